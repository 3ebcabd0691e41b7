/*
 * The program of each eo_layercheck_* target (CMakeLists.txt): nothing
 * runs; linking it with the whole of one layer and only the layers
 * below is the check that no file of the layer calls up.
 */
int
main(void)
{
	return 0;
}
