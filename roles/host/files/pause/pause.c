/*
 * podkit pause: the process that holds a pod's namespaces open.
 *
 * It does nothing but wait. It exits 0 on SIGTERM or SIGINT, so `docker stop`
 * returns at once instead of waiting for its kill timeout (PID 1 gets no
 * default signal handlers from the kernel). When the pod shares its PID
 * namespace, this is PID 1 for every member, and orphaned processes are
 * re-parented to it: SIGCHLD is handled by reaping every exited child, so no
 * zombie is left behind.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERSION "podkit-pause 1.0"

static void on_stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	int saved = errno;

	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

static void handle(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) < 0) {
		perror("pause: sigaction");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
		puts(VERSION);
		return 0;
	}
	if (getpid() != 1)
		fprintf(stderr, "pause: warning: not running as PID 1\n");

	handle(SIGINT, on_stop);
	handle(SIGTERM, on_stop);
	handle(SIGCHLD, on_child);

	for (;;)
		pause();
}
