//  A private s3rver for the tests (qv_it_s3rver.h).
#include "qv_it_s3rver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

const char *
qv_it_s3rver_bin (void)
{
    const char *bin = getenv ("QV_S3RVER");
    if (!bin || access (bin, X_OK) != 0) {
        printf ("QV_S3RVER (the s3rver binary) is not set: skipped\n");
        return NULL;
    }
    return bin;
}

bool
qv_it_port_answers (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    bool ok = connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0;
    close (fd);
    return ok;
}

pid_t
qv_it_s3rver_start (const char *bin, const char *dir, int port, const char *cert,
                    const char *key)
{
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char p [16];
        snprintf (p, sizeof p, "%d", port);
        int null = open ("/dev/null", O_WRONLY);
        dup2 (null, 1);
        dup2 (null, 2);
        if (cert && key)
            execl (bin, bin, "-d", dir, "-a", "127.0.0.1", "-p", p, "-s",
                   "--allow-mismatched-signatures", "--cert", cert, "--key", key, (char *) NULL);
        else
            execl (bin, bin, "-d", dir, "-a", "127.0.0.1", "-p", p, "-s",
                   "--allow-mismatched-signatures", (char *) NULL);
        _exit (127);
    }
    for (int i = 0; i < 600 && !qv_it_port_answers (port); i++) {
        if (waitpid (pid, NULL, WNOHANG) == pid)
            return -1;
        usleep (100000);
    }
    if (!qv_it_port_answers (port)) {
        qv_it_s3rver_stop (pid);
        return -1;
    }
    return pid;
}

void
qv_it_s3rver_stop (pid_t pid)
{
    if (pid > 0) {
        kill (pid, SIGKILL);
        waitpid (pid, NULL, 0);
    }
}
