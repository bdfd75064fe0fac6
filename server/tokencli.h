/* tokencli.h - the `parleyd token` and `parleyd check-token` subcommands. */
#ifndef PARLEY_TOKENCLI_H
#define PARLEY_TOKENCLI_H

/* 1 if arg names a subcommand (argv[1] of parleyd). */
int tokencli_is_command(const char *arg);
/* Runs it: argv[0] is the subcommand. Returns the exit status (token:
 * 0 printed, 2 usage error; check-token: 0 valid, 1 invalid, 2 usage). */
int tokencli_main(int argc, char **argv);

#endif
