/* clone-into-cgroup CGROUP_DIR CMD [ARGS...]
 *
 * Starts CMD directly inside the cgroup v2 directory CGROUP_DIR with clone3(CLONE_INTO_CGROUP)
 * (Linux >= 5.7, see clone(2)), waits for it and exits with its status (128+N if killed by
 * signal N). Exits 99 when clone3 itself fails, after printing errno, so a caller can tell
 * "CLONE_INTO_CGROUP unusable" from a failing CMD. There is no glibc wrapper for clone3, hence
 * the raw syscall; the child only calls async-signal-safe execvp/_exit afterwards. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CGROUP_DIR CMD [ARGS...]\n", argv[0]);
        return 2;
    }
    int cgfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgfd < 0) {
        fprintf(stderr, "open %s: %s\n", argv[1], strerror(errno));
        return 99;
    }
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = (uint64_t)cgfd;
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid < 0) {
        fprintf(stderr, "clone3(CLONE_INTO_CGROUP): %s\n", strerror(errno));
        return 99;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    int status;
    if (waitpid((pid_t)pid, &status, 0) < 0) {
        perror("waitpid");
        return 99;
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
