//  Integration-test helper for the TLS suites (NATS over TLS, S3 over HTTPS): a
//  certificate made in the test by openssl. Like the other helpers, nothing here uses
//  cmocka: functions return codes and the tests assert.
#ifndef QV_IT_TLS_H_INCLUDED
#define QV_IT_TLS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  True if the openssl command is on PATH (the TLS tests skip without it).
bool
    qv_it_have_openssl (void);

//  A self-signed certificate valid for a day, for the names in san (openssl's
//  subjectAltName syntax: "IP:127.0.0.1,DNS:localhost"), its common name the first
//  of them: the key is written to DIR/NAME-key.pem and the certificate to
//  DIR/NAME-cert.pem, their paths into key and cert (size bytes each). 0, or -1
//  (openssl's output is in DIR/openssl.log).
int
    qv_it_tls_cert (const char *dir, const char *name, const char *san, char *cert, char *key,
                    size_t size);

#endif
