/* Prints the real, effective and saved uid/gid. Installed setuid root by tests/vm/run.sh: run
 * by an unprivileged guest user it must print euid=0, which proves the host's files reach the
 * guest with their ownership and setuid bit intact (virtiofs + overlayfs, no nosuid). */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0) {
        perror("getresuid");
        return 1;
    }
    printf("ruid=%u euid=%u suid=%u rgid=%u egid=%u sgid=%u\n", r, e, s, rg, eg, sg);
    return 0;
}
