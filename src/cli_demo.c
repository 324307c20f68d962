/* peqa CLI — the built-in demo. (Not written yet.) */
#include <stdio.h>
#include "cli.h"

int cmd_demo(int argc, char **argv) { (void)argc, (void)argv; fprintf(stderr, "peqa demo: not implemented yet\n"); return 2; }
