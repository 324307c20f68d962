/* peqa — the command-line tool. The only place that prints and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "peqa.h"

int main(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("peqa %s\n", peqa_version());
    return 0;
}
