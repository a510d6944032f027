//  Milvus REST API v2 users/ and roles/ endpoints, mapped onto the native user and
//  role ops (README, "Authentication and roles"; the ops check privileges as over
//  ZeroMQ: Admin, except one's own password and description).
#include "qv_milvus_ctx.h"

#include <string.h>

//  Adds body [key] (a string, required) to args as native field to. 0 or
//  QV_MILVUS_ANSWERED.
static int
s_take (qv_milvus_ctx_t *c, json_t *args, const char *key, const char *to, bool required)
{
    bool bad = false;
    json_t *v = qv_milvus_field (c, key, JSON_STRING, required, &bad);
    if (bad)
        return QV_MILVUS_ANSWERED;
    if (v)
        json_object_set (args, to, v);
    return 0;
}

//  Calls op with args and answers {} (or, with list_key, the reply's list).
static void
s_answer (qv_milvus_ctx_t *c, const char *op, json_t *args, const char *list_key)
{
    qv_doc_t *r;
    if (qv_milvus_call (c, op, args, &r))
        return;
    json_t *data = NULL;
    if (list_key) {
        const qv_val_t *list = qv_val_get (qv_doc_root (r), list_key);
        data = list ? qv_milvus_to_json (list) : json_array ();
    }
    qv_doc_destroy (&r);
    qv_milvus_ok (c, data);
}

void
qv_milvus_users (qv_milvus_ctx_t *c, const char *action)
{
    json_t *args = json_object ();
    if (!strcmp (action, "list")) {
        s_answer (c, "list_users", args, "users");
        return;
    }
    if (s_take (c, args, "userName", "user", true)) {
        json_decref (args);
        return;
    }
    int rc = 0;
    const char *op = NULL;
    if (!strcmp (action, "create")) {
        op = "create_user";
        rc = s_take (c, args, "password", "password", true);
    }
    else
    if (!strcmp (action, "drop"))
        op = "drop_user";
    else
    if (!strcmp (action, "update_password")) {
        //  Milvus names the old password `password`; without it, an Admin's reset
        op = "update_password";
        rc = s_take (c, args, "password", "old_password", false);
        if (rc == 0)
            rc = s_take (c, args, "newPassword", "new_password", true);
    }
    else
    if (!strcmp (action, "grant_role") || !strcmp (action, "revoke_role")) {
        op = action;
        rc = s_take (c, args, "roleName", "role", true);
    }
    else {
        //  describe: the user's role names, as Milvus answers
        qv_doc_t *r;
        if (qv_milvus_call (c, "describe_user", args, &r))
            return;
        json_t *names = json_array ();
        const qv_val_t *roles = qv_val_get (qv_doc_root (r), "roles");
        for (size_t i = 0; roles && i < qv_val_len (roles); i++) {
            const qv_val_t *name = qv_val_get (qv_val_at (roles, i), "role");
            if (name)
                json_array_append_new (names, qv_milvus_to_json (name));
        }
        qv_doc_destroy (&r);
        qv_milvus_ok (c, names);
        return;
    }
    if (rc) {
        json_decref (args);
        return;
    }
    s_answer (c, op, args, NULL);
}

void
qv_milvus_roles (qv_milvus_ctx_t *c, const char *action)
{
    json_t *args = json_object ();
    if (!strcmp (action, "list")) {
        s_answer (c, "list_roles", args, "roles");
        return;
    }
    if (s_take (c, args, "roleName", "role", true)) {
        json_decref (args);
        return;
    }
    if (!strcmp (action, "create") || !strcmp (action, "drop")) {
        s_answer (c, !strcmp (action, "create") ? "create_role" : "drop_role", args, NULL);
        return;
    }
    if (!strcmp (action, "describe")) {
        //  Milvus's privilege items; a privilege on "*" is a Global one
        qv_doc_t *r;
        if (qv_milvus_call (c, "describe_role", args, &r))
            return;
        json_t *items = json_array ();
        const qv_val_t *privs = qv_val_get (qv_doc_root (r), "privileges");
        for (size_t i = 0; privs && i < qv_val_len (privs); i++) {
            const qv_val_t *p = qv_val_at (privs, i);
            json_t *coll = qv_milvus_to_json (qv_val_get (p, "collection"));
            bool global = json_is_string (coll) && !strcmp (json_string_value (coll), "*");
            const qv_val_t *grantor = qv_val_get (p, "grantor");
            json_array_append_new (items, json_pack ("{s:s, s:s, s:o, s:o, s:o}", "dbName", "default",
                                                     "objectType", global ? "Global" : "Collection",
                                                     "objectName", coll, "privilege",
                                                     qv_milvus_to_json (qv_val_get (p, "privilege")),
                                                     "grantor", grantor ? qv_milvus_to_json (grantor)
                                                                        : json_string ("")));
        }
        qv_doc_destroy (&r);
        qv_milvus_ok (c, items);
        return;
    }
    //  grant_privilege, revoke_privilege: a privilege on one collection (objectType
    //  Collection) or on every one (Global, or objectName "*")
    bool bad = false;
    json_t *type = qv_milvus_field (c, "objectType", JSON_STRING, true, &bad);
    json_t *name = bad ? NULL : qv_milvus_field (c, "objectName", JSON_STRING, true, &bad);
    if (!bad && s_take (c, args, "privilege", "privilege", true))
        bad = true;
    if (!bad) {
        const char *t = json_string_value (type);
        if (!strcmp (t, "Global"))
            json_object_set_new (args, "collection", json_string ("*"));
        else
        if (!strcmp (t, "Collection"))
            json_object_set (args, "collection", name);
        else {
            qv_milvus_fail (c, QV_MILVUS_INVALID, "invalid parameter: objectType '%.64s': Quiver's "
                            "privileges are on a collection (Collection) or on every one (Global)", t);
            bad = true;
        }
    }
    if (bad) {
        json_decref (args);
        return;
    }
    s_answer (c, !strcmp (action, "grant_privilege") ? "grant_privilege" : "revoke_privilege",
              args, NULL);
}
