# Read by cpack (CPACK_PROJECT_CONFIG_FILE). The unit files and the
# daemon's default config path are fixed when CMake configures, so only a
# build configured for /usr makes a package whose files are where Debian
# looks for them.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_EO_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "echo-oracled: a .deb needs a build configured with "
    "-DCMAKE_INSTALL_PREFIX=/usr (this one: ${CPACK_EO_INSTALL_PREFIX})")
endif()
