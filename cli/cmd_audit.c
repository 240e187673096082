/* cmd_audit.c - placeholder until the audit subcommands land. */
#include <stdio.h>
#include "commands.h"
int wfs_cmd_audit(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "wardfs audit: not built yet\n");
	return 2;
}
