//  qvctl user / role: the user store of a server run with --auth (README,
//  "Authentication and roles"): users, their passwords and roles, roles and their
//  privileges. Passwords are read from standard input, one a line (without echo on
//  a terminal), never from the command line, where `ps` would show them.
#include "qv_ctl.h"

#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

const char qv_ctl_user_usage [] =
    "user list | create NAME | drop NAME | describe NAME | password NAME [--reset]\n"
    "          | grant NAME ROLE | revoke NAME ROLE\n\n"
    "Manages the users of a server run with --auth (needs the Admin privilege, except\n"
    "describe and password of oneself).\n"
    "  list               the users, one a line\n"
    "  create NAME        a user; its password is read from standard input\n"
    "  drop NAME          removes a user\n"
    "  describe NAME      its roles and their privileges\n"
    "  password NAME      changes a password: reads the old one, then the new one, a line\n"
    "                     each from standard input (prompts without echo on a terminal)\n"
    "    --reset          reads the new one only: an Admin's reset of another user's\n"
    "                     password (the user keeps its roles)\n"
    "  grant NAME ROLE    gives a user a role (built in: admin, every privilege; public, none)\n"
    "  revoke NAME ROLE   takes it back\n"
    "Example: printf 'secret-1\\n' | qvctl --token root:PASS user create alice";

const char qv_ctl_role_usage [] =
    "role list | create NAME | drop NAME | describe NAME\n"
    "          | grant ROLE PRIVILEGE [--collection C] | revoke ROLE PRIVILEGE [--collection C]\n\n"
    "Manages the roles of a server run with --auth (needs the Admin privilege).\n"
    "  list                  the roles, one a line\n"
    "  create NAME, drop NAME\n"
    "  describe NAME         its privileges, one \"collection privilege\" a line\n"
    "  grant ROLE PRIVILEGE  gives a role a privilege: Search, Query, Insert, Delete,\n"
    "                        CreateIndex, DDL, Admin or * (all)\n"
    "  revoke ROLE PRIVILEGE takes it back\n"
    "    --collection C      on collection C only (default *: every collection)";

static const struct option s_opts [] = {
    { "reset", no_argument, 0, 'r' }, { "collection", required_argument, 0, 'c' },
    { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
};

//  One line of standard input into out (its newline dropped); on a terminal a prompt
//  first and no echo. 0, or 1 (reported) when nothing was read.
static int
s_read_secret (const char *prompt, char *out, size_t size)
{
    bool tty = isatty (STDIN_FILENO);
    struct termios saved, quiet;
    if (tty && tcgetattr (STDIN_FILENO, &saved) == 0) {
        fprintf (stderr, "%s: ", prompt);
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t) ECHO;
        tcsetattr (STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    else
        tty = false;
    char *got = fgets (out, (int) size, stdin);
    if (tty) {
        tcsetattr (STDIN_FILENO, TCSAFLUSH, &saved);
        fprintf (stderr, "\n");
    }
    if (got)
        out [strcspn (out, "\r\n")] = 0;
    if (!got || !out [0]) {
        fprintf (stderr, "qvctl: no %s on standard input (one a line)\n", prompt);
        return 1;
    }
    return 0;
}

//  Sends w and prints the reply: with done, that line (text) or {"ok": true} (json);
//  else the list under list_key one a line (text) or every field (json).
static int
s_run (qv_ctl_t *ctx, qv_wr_t **w, const char *list_key, const char *done)
{
    qv_doc_t *reply;
    int rc = qv_ctl_call (ctx, w, &reply);
    if (rc)
        return rc;
    const qv_val_t *root = qv_doc_root (reply);
    if (ctx->json && done)
        printf ("{\"ok\": true}\n");
    else
    if (ctx->json)
        qv_ctl_print_fields (root);
    else
    if (done)
        printf ("%s\n", done);
    else {
        const qv_val_t *list = qv_val_get (root, list_key);
        for (size_t i = 0; i < qv_ctl_len (list); i++) {
            const char *str;
            size_t n;
            if (qv_val_str (qv_val_at (list, i), &str, &n) == 0)
                printf ("%.*s\n", (int) n, str);
        }
    }
    qv_doc_destroy (&reply);
    return 0;
}

//  A request of op with up to two string fields (NULL name: none).
static qv_wr_t *
s_request (qv_ctl_t *ctx, const char *op, const char *k1, const char *v1,
           const char *k2, const char *v2)
{
    qv_wr_t *w = qv_client_request (ctx->client, op, (k1 != NULL) + (k2 != NULL), NULL);
    if (k1) {
        qv_wr_str (w, k1);
        qv_wr_str (w, v1);
    }
    if (k2) {
        qv_wr_str (w, k2);
        qv_wr_str (w, v2);
    }
    return w;
}

//  After the options: the subcommand; *args the count of its arguments, *name the
//  first (NULL if none).
static const char *
s_sub (int argc, char **argv, int *args, const char **name)
{
    qv_ctl_check_positional (argc, argv, 1, 3);
    *args = argc - optind - 1;
    *name = *args > 0 ? argv [optind + 1] : NULL;
    return argv [optind];
}

int
qv_ctl_cmd_user (qv_ctl_t *ctx, int argc, char **argv)
{
    bool reset = false;
    int c;
    while ((c = qv_ctl_getopt (argc, argv, s_opts)) != -1)
        if (c == 'r')
            reset = true;
        else
            qv_ctl_usage_error ("%s", "--collection belongs to qvctl role");
    int args;
    const char *name, *sub = s_sub (argc, argv, &args, &name);
    char done [512];
    qv_wr_t *w = NULL;
    if (reset && strcmp (sub, "password") != 0)
        qv_ctl_usage_error ("%s", "--reset belongs to qvctl user password");
    if (!strcmp (sub, "list") && args == 0) {
        w = s_request (ctx, "list_users", NULL, NULL, NULL, NULL);
        return s_run (ctx, &w, "users", NULL);
    }
    if ((!strcmp (sub, "grant") || !strcmp (sub, "revoke")) && args == 2) {
        snprintf (done, sizeof done, "%s role '%s' %s user '%s'", !strcmp (sub, "grant") ?
                  "granted" : "revoked", argv [optind + 2], !strcmp (sub, "grant") ? "to" : "from", name);
        w = s_request (ctx, !strcmp (sub, "grant") ? "grant_role" : "revoke_role", "user", name,
                       "role", argv [optind + 2]);
        return s_run (ctx, &w, NULL, done);
    }
    if (args != 1)
        qv_ctl_usage_error ("'%s' is not a user command with these arguments (qvctl user --help)", sub);
    if (!strcmp (sub, "drop")) {
        snprintf (done, sizeof done, "dropped user '%s'", name);
        w = s_request (ctx, "drop_user", "user", name, NULL, NULL);
        return s_run (ctx, &w, NULL, done);
    }
    if (!strcmp (sub, "describe")) {
        w = s_request (ctx, "describe_user", "user", name, NULL, NULL);
        qv_doc_t *reply;
        int rc = qv_ctl_call (ctx, &w, &reply);
        if (rc)
            return rc;
        const qv_val_t *roles = qv_val_get (qv_doc_root (reply), "roles");
        if (ctx->json)
            qv_ctl_print_fields (qv_doc_root (reply));
        for (size_t i = 0; !ctx->json && i < qv_ctl_len (roles); i++) {
            const qv_val_t *role = qv_val_at (roles, i), *privs = qv_val_get (role, "privileges");
            char rn [256] = "", coll [256], priv [32];
            qv_ctl_get_str (role, "role", rn, sizeof rn);
            printf ("%s%s\n", rn, qv_ctl_len (privs) ? ":" : " (no privileges)");
            for (size_t j = 0; j < qv_ctl_len (privs); j++) {
                qv_ctl_get_str (qv_val_at (privs, j), "collection", coll, sizeof coll);
                qv_ctl_get_str (qv_val_at (privs, j), "privilege", priv, sizeof priv);
                printf ("  %s %s\n", coll, priv);
            }
        }
        if (!ctx->json && qv_ctl_len (roles) == 0)
            printf ("user '%s' has no roles\n", name);
        qv_doc_destroy (&reply);
        return 0;
    }
    char old_pw [300] = "", new_pw [300] = "";
    if (!strcmp (sub, "create")) {
        if (s_read_secret ("password", new_pw, sizeof new_pw))
            return 1;
        snprintf (done, sizeof done, "created user '%s'", name);
        w = s_request (ctx, "create_user", "user", name, "password", new_pw);
    }
    else
    if (!strcmp (sub, "password")) {
        if ((!reset && s_read_secret ("old password", old_pw, sizeof old_pw))
        ||  s_read_secret ("new password", new_pw, sizeof new_pw))
            return 1;
        snprintf (done, sizeof done, "%s the password of user '%s'", reset ? "reset" : "changed", name);
        w = qv_client_request (ctx->client, "update_password", 2 + !reset, NULL);
        qv_wr_str (w, "user"); qv_wr_str (w, name);
        qv_wr_str (w, "new_password"); qv_wr_str (w, new_pw);
        if (!reset) {
            qv_wr_str (w, "old_password");
            qv_wr_str (w, old_pw);
        }
    }
    else
        qv_ctl_usage_error ("'%s' is not a user command (qvctl user --help)", sub);
    int rc = s_run (ctx, &w, NULL, done);
    memset (old_pw, 0, sizeof old_pw);
    memset (new_pw, 0, sizeof new_pw);
    return rc;
}

int
qv_ctl_cmd_role (qv_ctl_t *ctx, int argc, char **argv)
{
    const char *collection = "*";
    int c;
    while ((c = qv_ctl_getopt (argc, argv, s_opts)) != -1)
        if (c == 'c')
            collection = optarg;
        else
            qv_ctl_usage_error ("%s", "--reset belongs to qvctl user password");
    int args;
    const char *name, *sub = s_sub (argc, argv, &args, &name);
    char done [600];
    qv_wr_t *w;
    if (!strcmp (sub, "list") && args == 0) {
        w = s_request (ctx, "list_roles", NULL, NULL, NULL, NULL);
        return s_run (ctx, &w, "roles", NULL);
    }
    if ((!strcmp (sub, "grant") || !strcmp (sub, "revoke")) && args == 2) {
        bool grant = !strcmp (sub, "grant");
        snprintf (done, sizeof done, "%s %s on %s%s%s %s role '%s'", grant ? "granted" : "revoked",
                  argv [optind + 2], strcmp (collection, "*") ? "collection '" : "every collection",
                  strcmp (collection, "*") ? collection : "", strcmp (collection, "*") ? "'" : "",
                  grant ? "to" : "from", name);
        w = qv_client_request (ctx->client, grant ? "grant_privilege" : "revoke_privilege", 3, NULL);
        qv_wr_str (w, "role"); qv_wr_str (w, name);
        qv_wr_str (w, "collection"); qv_wr_str (w, collection);
        qv_wr_str (w, "privilege"); qv_wr_str (w, argv [optind + 2]);
        return s_run (ctx, &w, NULL, done);
    }
    if (args != 1)
        qv_ctl_usage_error ("'%s' is not a role command with these arguments (qvctl role --help)", sub);
    if (!strcmp (sub, "create") || !strcmp (sub, "drop")) {
        snprintf (done, sizeof done, "%s role '%s'", !strcmp (sub, "create") ? "created" : "dropped", name);
        w = s_request (ctx, !strcmp (sub, "create") ? "create_role" : "drop_role", "role", name, NULL, NULL);
        return s_run (ctx, &w, NULL, done);
    }
    if (strcmp (sub, "describe") != 0)
        qv_ctl_usage_error ("'%s' is not a role command (qvctl role --help)", sub);
    w = s_request (ctx, "describe_role", "role", name, NULL, NULL);
    qv_doc_t *reply;
    int rc = qv_ctl_call (ctx, &w, &reply);
    if (rc)
        return rc;
    const qv_val_t *privs = qv_val_get (qv_doc_root (reply), "privileges");
    if (ctx->json)
        qv_ctl_print_fields (qv_doc_root (reply));
    for (size_t j = 0; !ctx->json && j < qv_ctl_len (privs); j++) {
        char coll [256] = "", priv [32] = "";
        qv_ctl_get_str (qv_val_at (privs, j), "collection", coll, sizeof coll);
        qv_ctl_get_str (qv_val_at (privs, j), "privilege", priv, sizeof priv);
        printf ("%s %s\n", coll, priv);
    }
    if (!ctx->json && qv_ctl_len (privs) == 0)
        printf ("role '%s' has no privileges\n", name);
    qv_doc_destroy (&reply);
    return 0;
}
