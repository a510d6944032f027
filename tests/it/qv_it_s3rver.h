//  Integration-test helper: a private s3rver (the S3 test server) on a port of the
//  test's choosing, over plain HTTP or over HTTPS with a certificate, for the suites
//  that stop and start their object store or need one of their own. Like the other
//  helpers, nothing here uses cmocka: functions return codes and the tests assert.
#ifndef QV_IT_S3RVER_H_INCLUDED
#define QV_IT_S3RVER_H_INCLUDED

#include <stdbool.h>
#include <sys/types.h>

//  The s3rver binary from QV_S3RVER (tools/test.sh sets it), or NULL after printing
//  why the test is skipped.
const char *
    qv_it_s3rver_bin (void);

//  Starts bin on 127.0.0.1:port with its objects in dir, any signature accepted;
//  over HTTPS when cert and key (PEM files) are given, else plain HTTP. Waits until
//  the port accepts connections (60 s). Its pid, or -1 if it did not come up.
pid_t
    qv_it_s3rver_start (const char *bin, const char *dir, int port, const char *cert,
                        const char *key);

//  Stops it (SIGKILL) and reaps it; nothing if pid <= 0.
void
    qv_it_s3rver_stop (pid_t pid);

//  True if something accepts TCP connections on 127.0.0.1:port.
bool
    qv_it_port_answers (int port);

#endif
