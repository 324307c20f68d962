/* peqa CLI — quantize and finetune. (Not written yet.) */
#include <stdio.h>
#include "cli.h"

int cmd_quantize(int argc, char **argv) { (void)argc, (void)argv; fprintf(stderr, "peqa quantize: not implemented yet\n"); return 2; }
int cmd_finetune(int argc, char **argv) { (void)argc, (void)argv; fprintf(stderr, "peqa finetune: not implemented yet\n"); return 2; }
