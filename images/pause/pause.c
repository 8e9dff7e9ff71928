/*
 * pause: the process that holds a pod sandbox's namespaces open.
 *
 * Written for kubelet-rs. It sleeps in pause() forever, reaps every child that
 * gets reparented to it (it runs as PID 1 of the pod's PID namespace when the
 * pod shares one), and exits with status 0 on SIGINT or SIGTERM.
 *
 * Build: gcc -static -Os -o pause pause.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PAUSE_VERSION
#define PAUSE_VERSION "3.10"
#endif

static void say(const char *msg)
{
	/* write(2) is async-signal-safe; stdio is not. */
	ssize_t unused = write(STDERR_FILENO, msg, strlen(msg));
	(void)unused;
}

static void on_stop(int sig)
{
	say(sig == SIGINT ? "pause: SIGINT, exiting\n" : "pause: SIGTERM, exiting\n");
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

static int install(int sig, void (*handler)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
		say("pause " PAUSE_VERSION " (kubelet-rs)\n");
		return 0;
	}
	if (getpid() != 1)
		say("pause: warning: not running as PID 1\n");

	if (install(SIGINT, on_stop, 0) != 0 || install(SIGTERM, on_stop, 0) != 0 ||
	    install(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) != 0) {
		say("pause: sigaction failed\n");
		return 1;
	}

	for (;;)
		pause();
}
