/**
 * @file launcher/cli/commands.h
 * @brief The subcommands of `hetrun`; each returns a process exit code (util/exitcodes.h).
 *        argv[0] is the subcommand name.
 */
#ifndef HETRUN_CLI_COMMANDS_H
#define HETRUN_CLI_COMMANDS_H

int hetrun_cmd_run(int argc, char **argv);      /**< run a job (cmd_run.c) */
int hetrun_cmd_validate(int argc, char **argv); /**< validate specs (cmd_validate.c) */
int hetrun_cmd_backends(int argc, char **argv); /**< list modules/devices (cmd_backends.c) */
int hetrun_cmd_topo(int argc, char **argv);     /**< node devices and locality (cmd_topo.c) */
int hetrun_cmd_plan(int argc, char **argv);     /**< placement plan, no run (cmd_plan.c) */
int hetrun_cmd_usage(int argc, char **argv);    /**< sum usage over reports (cmd_usage.c) */

#endif
