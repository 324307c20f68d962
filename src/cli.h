/* peqa CLI — helpers shared by the command files (src/cli*.c). Only the CLI prints and exits. */
#ifndef PEQA_CLI_H
#define PEQA_CLI_H
#include <stdint.h>
#include "peqa.h"

/* Prints "peqa: what: status (detail)" to stderr and exits 1. */
void cli_die_status(const char *what, peqa_status st) __attribute__((noreturn));
/* Prints "peqa: msg" to stderr and exits 1 (printf-style). */
void cli_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Option parsing: a command declares its options in a table; cli_parse fills them and exits
 * with a one-line error (code 2) on unknown options, missing values or malformed numbers. The
 * common options --isa and --threads are always accepted and fill *ctxopt. --help prints
 * `help` and exits 0. */
typedef enum { CLI_STR, CLI_INT, CLI_FLOAT, CLI_FLAG } cli_kind;
typedef struct {
    const char *name; /* "--tokens" */
    cli_kind kind;
    void *out;        /* const char **, int64_t *, double *, int * */
    double lo, hi;    /* allowed range for numbers */
} cli_opt;
void cli_parse(const char *cmd, int argc, char **argv, cli_opt *opts, int nopts, peqa_ctx_options *ctxopt,
               const char *help);
/* A context from parsed options (exits on error). */
peqa_ctx *cli_ctx(const peqa_ctx_options *o);
double cli_now(void);

/* Commands in other files: each gets the arguments after its name. */
int cmd_eval(int argc, char **argv);       /* src/cli_model.c */
int cmd_generate(int argc, char **argv);   /* src/cli_model.c */
int cmd_tokenize(int argc, char **argv);   /* src/cli_model.c */
int cmd_convert(int argc, char **argv);    /* src/cli_model.c */
int cmd_info_model(int argc, char **argv); /* src/cli_model.c: peqa info MODEL */
int cmd_init_model(int argc, char **argv); /* src/cli_model.c: hidden, a random model for tests */
int cmd_quantize(int argc, char **argv);   /* src/cli_train.c */
int cmd_finetune(int argc, char **argv);   /* src/cli_train.c */
int cmd_demo(int argc, char **argv);       /* src/cli_demo.c */

#endif
