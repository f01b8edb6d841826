/*
 * offgrid TEST STAND-IN for the Ollama binary: NOT Ollama.
 *
 * Compiled by tests/standins/ollama_release_standin.py into the stand-in release tarball as
 * bin/ollama. A real executable (not a script) so that, as with the real release, the process
 * systemd starts IS bin/ollama: /proc/PID/exe is the pinned file the auditor hashes (OG-INT-01)
 * and argv is `ollama serve`. It runs the Ollama-protocol stand-in server
 * (../lib/ollama/ollama_standin.py) with the system python3 as its child, forwards termination
 * signals to it and exits with its status.
 *
 * Ollama's runners are children of `ollama serve`, the unit's main process. Here the server is
 * this launcher's child, so the launcher is a child subreaper (PR_SET_CHILD_SUBREAPER) and
 * tells the server so (OFFGRID_STANDIN_ADOPT_RUNNERS=1): the server starts each runner through
 * an intermediate that exits at once, the kernel makes the runner this process's child, and
 * this process reaps it when it ends.
 */
#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef STANDIN_VERSION
#error "build with -DSTANDIN_VERSION='\"x.y.z\"'"
#endif

#define PYTHON "/usr/bin/python3"

static volatile pid_t child = -1;

static void forward(int sig) {
    if (child > 0) {
        kill(child, sig);
    }
}

static int server_path(char *out, size_t size) {
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len < 0) {
        return -1;
    }
    self[len] = '\0';
    int written = snprintf(out, size, "%s/../lib/ollama/ollama_standin.py", dirname(self));
    return (written < 0 || (size_t)written >= size) ? -1 : 0;
}

int main(int argc, char **argv) {
    char server[PATH_MAX];
    if (server_path(server, sizeof(server)) != 0) {
        perror("ollama stand-in: locating the stand-in server");
        return 127;
    }
    /* The version this stand-in release reports, unless the environment overrides it. */
    setenv("OFFGRID_STANDIN_VERSION", STANDIN_VERSION, 0);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
        perror("ollama stand-in: PR_SET_CHILD_SUBREAPER");
        return 127;
    }
    setenv("OFFGRID_STANDIN_ADOPT_RUNNERS", "1", 1);

    char **args = calloc((size_t)argc + 2, sizeof(char *));
    if (args == NULL) {
        return 127;
    }
    args[0] = PYTHON;
    args[1] = server;
    for (int i = 1; i < argc; i++) {
        args[i + 1] = argv[i];
    }

    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = forward;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);

    child = fork();
    if (child < 0) {
        perror("ollama stand-in: fork");
        return 127;
    }
    if (child == 0) {
        execv(PYTHON, args);
        perror("ollama stand-in: exec " PYTHON);
        _exit(127);
    }
    /* Reap adopted runners as they end; stop when the server itself ends. */
    int status = 0;
    for (;;) {
        pid_t done = waitpid(-1, &status, 0);
        if (done == child) {
            break;
        }
        if (done < 0 && errno != EINTR) {
            perror("ollama stand-in: waitpid");
            return 127;
        }
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}
