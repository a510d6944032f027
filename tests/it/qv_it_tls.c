//  A certificate made by openssl for the TLS tests (qv_it_tls.h).
#include "qv_it_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
qv_it_have_openssl (void)
{
    return system ("command -v openssl > /dev/null 2>&1") == 0;
}

int
qv_it_tls_cert (const char *dir, const char *name, const char *san, char *cert, char *key,
                size_t size)
{
    if ((size_t) snprintf (cert, size, "%s/%s-cert.pem", dir, name) >= size
    ||  (size_t) snprintf (key, size, "%s/%s-key.pem", dir, name) >= size)
        return -1;
    //  The common name: the first name of san, without its "IP:" or "DNS:"
    char cn [256];
    const char *colon = strchr (san, ':');
    snprintf (cn, sizeof cn, "%.*s", (int) strcspn (colon ? colon + 1 : san, ","),
              colon ? colon + 1 : san);
    char cmd [4096];
    if ((size_t) snprintf (cmd, sizeof cmd, "openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
                           "-subj /CN=%s -addext subjectAltName=%s -keyout %s -out %s "
                           ">> %s/openssl.log 2>&1", cn, san, key, cert, dir) >= sizeof cmd)
        return -1;
    return system (cmd) == 0 ? 0 : -1;
}
