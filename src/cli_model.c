/* peqa CLI — model commands: eval, generate, tokenize, convert, info MODEL. (Not written yet.) */
#include <stdio.h>
#include "cli.h"

static int todo(const char *what)
{
    fprintf(stderr, "peqa %s: not implemented yet\n", what);
    return 2;
}
int cmd_eval(int argc, char **argv) { (void)argc, (void)argv; return todo("eval"); }
int cmd_generate(int argc, char **argv) { (void)argc, (void)argv; return todo("generate"); }
int cmd_tokenize(int argc, char **argv) { (void)argc, (void)argv; return todo("tokenize"); }
int cmd_convert(int argc, char **argv) { (void)argc, (void)argv; return todo("convert"); }
int cmd_info_model(int argc, char **argv) { (void)argc, (void)argv; return todo("info MODEL"); }
