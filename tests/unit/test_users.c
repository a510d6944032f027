//  The user store (actors/qv_users.c): changes checked and applied, privileges through
//  roles and "*", the store written and read back (the manifest's form), tokens
//  authenticated and the cache emptied by a change, root from the environment.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_rc.h"
#include "qv_users.h"

//  A change of action with user, role, collection, privilege ("" for none) and, for
//  password changes, a hash of password.
static qv_user_change_t
s_change (qv_user_action_t action, const char *user, const char *role, const char *coll,
          const char *priv, const char *password)
{
    qv_user_change_t ch = { .action = action };
    snprintf (ch.user, sizeof ch.user, "%s", user);
    snprintf (ch.role, sizeof ch.role, "%s", role);
    snprintf (ch.collection, sizeof ch.collection, "%s", coll);
    snprintf (ch.privilege, sizeof ch.privilege, "%s", priv);
    if (password)
        assert_int_equal (qv_users_hash (password, strlen (password), &ch.hash), 0);
    return ch;
}

static int
s_apply (qv_users_t *users, qv_user_action_t action, const char *user, const char *role,
         const char *coll, const char *priv, const char *password)
{
    qv_user_change_t ch = s_change (action, user, role, coll, priv, password);
    int rc = qv_users_apply (users, &ch);
    free (ch.hash);
    return rc;
}

//  The grantor of role's first privilege in what describe_role writes, into out.
static void
s_grantor (qv_users_t *users, const char *role, size_t item, char *out, size_t size)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map_open (w);
    assert_int_equal (qv_users_describe_role (users, role, w), 0);
    qv_wr_map_close (w);
    size_t n;
    const void *data = qv_wr_data (w, &n);
    int rc;
    qv_doc_t *doc = qv_doc_parse_view (data, n, SIZE_MAX, &rc);
    assert_non_null (doc);
    const qv_val_t *privs = qv_val_get (qv_doc_root (doc), "privileges");
    assert_true (item < qv_val_len (privs));
    assert_int_equal (qv_val_strcpy (qv_val_get (qv_val_at (privs, item), "grantor"), out, size), 0);
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
}

//  Each grant keeps who made it (the last grant of the same privilege wins): in
//  describe_role, through the store's write and read, and as "" from a store written
//  before grantors were kept and for the built-in admin role.
static void
test_grantor (void **state)
{
    (void) state;
    qv_users_t *users = qv_users_new ();
    assert_non_null (users);
    assert_int_equal (s_apply (users, QV_ROLE_CREATE, "", "r", "", "", NULL), 0);
    qv_user_change_t ch = s_change (QV_PRIV_GRANT, "", "r", "B", "Search", NULL);
    snprintf (ch.grantor, sizeof ch.grantor, "gina");
    assert_int_equal (qv_users_apply (users, &ch), 0);
    ch = s_change (QV_PRIV_GRANT, "", "r", "C", "Query", NULL);
    assert_int_equal (qv_users_apply (users, &ch), 0);
    char who [64];
    s_grantor (users, "r", 0, who, sizeof who);
    assert_string_equal (who, "gina");
    s_grantor (users, "r", 1, who, sizeof who);
    assert_string_equal (who, "");
    s_grantor (users, "admin", 0, who, sizeof who);
    assert_string_equal (who, "");
    //  Granted again by another: the new grantor
    ch = s_change (QV_PRIV_GRANT, "", "r", "B", "Search", NULL);
    snprintf (ch.grantor, sizeof ch.grantor, "hal");
    assert_int_equal (qv_users_apply (users, &ch), 0);
    s_grantor (users, "r", 0, who, sizeof who);
    assert_string_equal (who, "hal");
    //  Kept through the store's write and read
    qv_users_t *copy = qv_users_dup (users);
    assert_non_null (copy);
    s_grantor (copy, "r", 0, who, sizeof who);
    assert_string_equal (who, "hal");
    qv_users_destroy (&copy);
    //  A store of [collection, privilege] pairs: no grantor
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 2);
    qv_wr_str (w, "users"); qv_wr_array (w, 0);
    qv_wr_str (w, "roles"); qv_wr_array (w, 1);
    qv_wr_map (w, 2);
    qv_wr_str (w, "name"); qv_wr_str (w, "old");
    qv_wr_str (w, "grants"); qv_wr_array (w, 1); qv_wr_array (w, 2);
    qv_wr_str (w, "B"); qv_wr_str (w, "Search");
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse_view (data, size, SIZE_MAX, &rc);
    assert_non_null (doc);
    qv_users_t *read = qv_users_new ();
    assert_int_equal (qv_users_read (read, qv_doc_root (doc)), 0);
    s_grantor (read, "old", 0, who, sizeof who);
    assert_string_equal (who, "");
    qv_doc_destroy (&doc);
    qv_users_destroy (&read);
    qv_wr_destroy (&w);
    qv_users_destroy (&users);
}

static int
s_auth (qv_users_t *users, const char *token, bool *cached)
{
    char user [QV_NAME_MAX + 1];
    return qv_users_authenticate (users, token, strlen (token), user, sizeof user, false, cached);
}

static void
test_changes_and_privileges (void **state)
{
    (void) state;
    qv_users_t *users = qv_users_new ();
    assert_non_null (users);
    assert_int_equal (s_apply (users, QV_USER_CREATE, "alice", "", "", "", "alicepw1"), 0);
    assert_int_equal (s_apply (users, QV_USER_CREATE, "alice", "", "", "", "alicepw1"), QV_EEXIST);
    assert_int_equal (s_apply (users, QV_ROLE_GRANT, "alice", "r", "", "", NULL), QV_ENOTFOUND);
    assert_int_equal (s_apply (users, QV_ROLE_CREATE, "", "r", "", "", NULL), 0);
    assert_int_equal (s_apply (users, QV_PRIV_GRANT, "", "r", "A", "Fly", NULL), QV_EINVAL);
    assert_int_equal (s_apply (users, QV_PRIV_GRANT, "", "r", "A", "Search", NULL), 0);
    assert_false (qv_users_allowed (users, "alice", "A", "Search"));
    assert_int_equal (s_apply (users, QV_ROLE_GRANT, "alice", "r", "", "", NULL), 0);
    assert_true (qv_users_allowed (users, "alice", "A", "Search"));
    assert_false (qv_users_allowed (users, "alice", "B", "Search"));
    assert_false (qv_users_allowed (users, "alice", "A", "Insert"));
    assert_true (qv_users_allowed (users, "root", "B", "Admin"));
    //  "*" on either side
    assert_int_equal (s_apply (users, QV_PRIV_GRANT, "", "r", "*", "Query", NULL), 0);
    assert_true (qv_users_allowed (users, "alice", "B", "Query"));
    assert_int_equal (s_apply (users, QV_PRIV_GRANT, "", "r", "C", "*", NULL), 0);
    assert_true (qv_users_allowed (users, "alice", "C", "Delete"));
    assert_false (qv_users_allowed (users, "alice", "B", "Delete"));
    //  Dropping the role takes it from its users
    assert_int_equal (s_apply (users, QV_ROLE_DROP, "", "r", "", "", NULL), 0);
    assert_false (qv_users_allowed (users, "alice", "A", "Search"));
    assert_int_equal (s_apply (users, QV_ROLE_CREATE, "", "r", "", "", NULL), 0);
    assert_false (qv_users_allowed (users, "alice", "A", "Search"));
    assert_int_equal (s_apply (users, QV_USER_DROP, "alice", "", "", "", NULL), 0);
    assert_false (qv_users_has (users, "alice"));
    assert_int_equal (s_apply (users, QV_USER_DROP, "root", "", "", "", NULL), QV_EINVAL);
    qv_users_destroy (&users);
    assert_null (users);
    qv_users_destroy (&users);
}

static void
test_write_read (void **state)
{
    (void) state;
    qv_users_t *users = qv_users_new ();
    assert_int_equal (s_apply (users, QV_USER_CREATE, "bob", "", "", "", "bobpass1"), 0);
    assert_int_equal (s_apply (users, QV_ROLE_CREATE, "", "w", "", "", NULL), 0);
    assert_int_equal (s_apply (users, QV_PRIV_GRANT, "", "w", "B", "Insert", NULL), 0);
    assert_int_equal (s_apply (users, QV_ROLE_GRANT, "bob", "w", "", "", NULL), 0);
    assert_int_equal (qv_users_set_root_password (users, "rootpass1"), 0);
    qv_users_t *copy = qv_users_dup (users);
    assert_non_null (copy);
    assert_true (qv_users_allowed (copy, "bob", "B", "Insert"));
    assert_int_equal (s_auth (copy, "bob:bobpass1", NULL), 0);
    assert_int_equal (s_auth (copy, "root:rootpass1", NULL), 0);   //  dup keeps it
    //  Written (the manifest's form), root from the environment is not
    qv_wr_t *w = qv_wr_new ();
    qv_users_write (users, w);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse_view (data, size, SIZE_MAX, &rc);
    assert_non_null (doc);
    qv_users_t *read = qv_users_new ();
    assert_int_equal (qv_users_read (read, qv_doc_root (doc)), 0);
    assert_true (qv_users_allowed (read, "bob", "B", "Insert"));
    assert_false (qv_users_has (read, "root"));
    assert_int_equal (s_auth (read, "bob:bobpass1", NULL), 0);
    qv_doc_destroy (&doc);
    //  Not the format: QV_ECORRUPT
    qv_wr_reset (w);
    qv_wr_map (w, 1);
    qv_wr_str (w, "users");
    qv_wr_uint (w, 3);
    data = qv_wr_data (w, &size);
    doc = qv_doc_parse_view (data, size, SIZE_MAX, &rc);
    assert_int_equal (qv_users_read (read, qv_doc_root (doc)), QV_ECORRUPT);
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
    qv_users_destroy (&read);
    qv_users_destroy (&copy);
    qv_users_destroy (&users);
}

//  Milvus's built-in roles: admin holds everything, public nothing; neither can be
//  dropped or changed, neither is written, and a stored role of the same name from
//  before them is kept as it was
static void
test_builtin_roles (void **state)
{
    (void) state;
    qv_users_t *users = qv_users_new ();
    assert_int_equal (s_apply (users, QV_USER_CREATE, "ann", "", "", "", "annpass1"), 0);
    assert_int_equal (s_apply (users, QV_USER_CREATE, "ben", "", "", "", "benpass1"), 0);
    assert_false (qv_users_allowed (users, "ann", "B", "DDL"));
    assert_int_equal (s_apply (users, QV_ROLE_GRANT, "ann", "admin", "", "", NULL), 0);
    assert_int_equal (s_apply (users, QV_ROLE_GRANT, "ben", "public", "", "", NULL), 0);
    for (size_t i = 0; i < 8; i++) {
        const char *privs [] = { "Search", "Query", "Insert", "Delete", "CreateIndex", "DDL", "Admin", "*" };
        assert_true (qv_users_allowed (users, "ann", "B", privs [i]));
        assert_false (qv_users_allowed (users, "ben", "B", privs [i]));
    }
    assert_int_equal (s_apply (users, QV_ROLE_CREATE, "", "admin", "", "", NULL), QV_EEXIST);
    assert_int_equal (s_apply (users, QV_ROLE_DROP, "", "admin", "", "", NULL), QV_EINVAL);
    assert_non_null (strstr (qv_err_msg (), "built in"));
    assert_int_equal (s_apply (users, QV_ROLE_DROP, "", "public", "", "", NULL), QV_EINVAL);
    assert_int_equal (s_apply (users, QV_PRIV_GRANT, "", "public", "B", "Search", NULL), QV_EINVAL);
    assert_int_equal (s_apply (users, QV_PRIV_REVOKE, "", "admin", "*", "*", NULL), QV_EINVAL);
    //  Listed, described, not written; back after a read
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map_open (w);
    qv_users_write_roles (users, w);
    assert_int_equal (qv_users_describe_role (users, "admin", w), 0);
    qv_wr_map_close (w);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse_view (data, size, SIZE_MAX, &rc);
    const qv_val_t *roles = qv_val_get (qv_doc_root (doc), "roles");
    assert_int_equal (qv_val_len (roles), 2);
    const qv_val_t *privs = qv_val_get (qv_doc_root (doc), "privileges");
    assert_int_equal (qv_val_len (privs), 1);
    char text [8];
    assert_int_equal (qv_val_strcpy (qv_val_get (qv_val_at (privs, 0), "collection"), text, sizeof text), 0);
    assert_string_equal (text, "*");
    qv_doc_destroy (&doc);
    qv_wr_reset (w);
    qv_users_write (users, w);
    data = qv_wr_data (w, &size);
    doc = qv_doc_parse_view (data, size, SIZE_MAX, &rc);
    assert_int_equal (qv_val_len (qv_val_get (qv_doc_root (doc), "roles")), 0);
    qv_users_t *read = qv_users_new ();
    assert_int_equal (qv_users_read (read, qv_doc_root (doc)), 0);
    assert_true (qv_users_allowed (read, "ann", "C", "Admin"));
    assert_false (qv_users_allowed (read, "ben", "C", "Search"));
    qv_doc_destroy (&doc);
    qv_users_destroy (&read);
    //  A store written before: its own role `admin` (Search on B) is kept
    qv_wr_reset (w);
    qv_wr_map (w, 2);
    qv_wr_str (w, "users");
    qv_wr_array (w, 0);
    qv_wr_str (w, "roles");
    qv_wr_array (w, 1);
    qv_wr_map (w, 2);
    qv_wr_str (w, "name"); qv_wr_str (w, "admin");
    qv_wr_str (w, "grants"); qv_wr_array (w, 1); qv_wr_array (w, 2);
    qv_wr_str (w, "B"); qv_wr_str (w, "Search");
    data = qv_wr_data (w, &size);
    doc = qv_doc_parse_view (data, size, SIZE_MAX, &rc);
    read = qv_users_new ();
    assert_int_equal (qv_users_read (read, qv_doc_root (doc)), 0);
    assert_int_equal (s_apply (read, QV_USER_CREATE, "cat", "", "", "", "catpass1"), 0);
    assert_int_equal (s_apply (read, QV_ROLE_GRANT, "cat", "admin", "", "", NULL), 0);
    assert_true (qv_users_allowed (read, "cat", "B", "Search"));
    assert_false (qv_users_allowed (read, "cat", "B", "Insert"));
    assert_int_equal (s_apply (read, QV_PRIV_GRANT, "", "admin", "B", "Insert", NULL), 0);
    qv_doc_destroy (&doc);
    qv_users_destroy (&read);
    qv_wr_destroy (&w);
    qv_users_destroy (&users);
}

static void
test_authenticate (void **state)
{
    (void) state;
    qv_users_t *users = qv_users_new ();
    assert_int_equal (s_apply (users, QV_USER_CREATE, "carol", "", "", "", "carolpw1"), 0);
    bool cached = true;
    assert_int_equal (s_auth (users, "carol:carolpw1", &cached), 0);
    assert_false (cached);
    assert_int_equal (s_auth (users, "carol:carolpw1", &cached), 0);
    assert_true (cached);
    assert_int_equal (s_auth (users, "carol:xyzzy123", NULL), QV_EUNAUTH);
    assert_null (strstr (qv_err_msg (), "xyzzy"));       //  never the password
    assert_int_equal (s_auth (users, "carol", NULL), QV_EUNAUTH);
    assert_int_equal (s_auth (users, ":carolpw1", NULL), QV_EUNAUTH);
    assert_int_equal (s_auth (users, "dave:carolpw1", NULL), QV_EUNAUTH);
    //  Cached only: a token not verified before is refused without a verify
    char user [QV_NAME_MAX + 1];
    assert_int_equal (qv_users_authenticate (users, "carol:carolpw1", 14, user, sizeof user,
                                             true, NULL), 0);
    //  A change empties the cache; a new password replaces the old one
    assert_int_equal (s_apply (users, QV_USER_PASSWORD, "carol", "", "", "", "carolpw2"), 0);
    assert_int_equal (qv_users_authenticate (users, "carol:carolpw2", 14, user, sizeof user,
                                             true, NULL), QV_EUNAUTH);
    assert_int_equal (s_auth (users, "carol:carolpw1", NULL), QV_EUNAUTH);
    assert_int_equal (s_auth (users, "carol:carolpw2", &cached), 0);
    assert_false (cached);
    assert_string_equal (user, "carol");
    //  A stored root wins over the environment's
    assert_int_equal (qv_users_set_root_password (users, "rootpass1"), 0);
    assert_int_equal (s_auth (users, "root:rootpass1", NULL), 0);
    assert_int_equal (s_apply (users, QV_USER_PASSWORD, "root", "", "", "", "rootpass2"), 0);
    assert_int_equal (qv_users_set_root_password (users, "rootpass1"), 0);
    assert_int_equal (s_auth (users, "root:rootpass1", NULL), QV_EUNAUTH);
    assert_int_equal (s_auth (users, "root:rootpass2", NULL), 0);
    //  Password lengths
    char *hash;
    assert_int_equal (qv_users_hash ("short", 5, &hash), QV_EINVAL);
    assert_null (hash);
    qv_users_destroy (&users);
}

static void
test_privilege_of (void **state)
{
    (void) state;
    assert_string_equal (qv_users_privilege_of (QV_OP_search), "Search");
    assert_string_equal (qv_users_privilege_of (QV_OP_get), "Query");
    assert_string_equal (qv_users_privilege_of (QV_OP_upsert), "Insert");
    assert_string_equal (qv_users_privilege_of (QV_OP_delete), "Delete");
    assert_string_equal (qv_users_privilege_of (QV_OP_drop_index), "CreateIndex");
    assert_string_equal (qv_users_privilege_of (QV_OP_flush), "DDL");
    assert_string_equal (qv_users_privilege_of (QV_OP_grant_privilege), "Admin");
    assert_string_equal (qv_users_privilege_of (QV_OP_backup), "Admin");
    assert_string_equal (qv_users_privilege_of (QV_OP_describe_role), "Admin");
    assert_null (qv_users_privilege_of (QV_OP_ping));
    assert_null (qv_users_privilege_of (QV_OP_describe_collection));
    for (int op = 0; op < QV_OP_COUNT; op++)
        assert_true (qv_users_op_changes ((qv_op_t) op)
                     == (qv_users_privilege_of ((qv_op_t) op) != NULL
                         && strcmp (qv_users_privilege_of ((qv_op_t) op), "Admin") == 0
                         && op != QV_OP_list_users && op != QV_OP_list_roles
                         && op != QV_OP_describe_role
                         && op != QV_OP_backup && op != QV_OP_get_backup_state)
                     || op == QV_OP_update_password);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_changes_and_privileges),
        cmocka_unit_test (test_grantor),
        cmocka_unit_test (test_write_read),
        cmocka_unit_test (test_builtin_roles),
        cmocka_unit_test (test_authenticate),
        cmocka_unit_test (test_privilege_of),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
