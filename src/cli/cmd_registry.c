/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca registry migrate: a whole registry moved to another location or
 * backend (SQLite <-> PostgreSQL), checked before it is committed. */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "registry/registry.h"

enum {
    OPT_FROM = 1,
    OPT_TO,
};

/* "Shown" forms of locations: a message names both. */
#define MIGRATE_SHOWN_MAX 512

struct migrate {
    const char *from, *to;
    char *from_copy, *to_copy; /* locations with a password, moved out of
                                  argv (migrate_hide) */
    char from_shown[MIGRATE_SHOWN_MAX], to_shown[MIGRATE_SHOWN_MAX];
    const char *new_file; /* a SQLite target this command created */
};

/*
 * A location that carries a password is copied, and its text in argv is
 * overwritten with the form messages show, so that ps and /proc/PID/cmdline
 * show no password once the options are read (the short time before that
 * is why docs/registry-postgresql.md recommends ~/.pgpass).  @arg is
 * optarg, @copy gets the heap copy that @loc then points to.
 */
static int migrate_hide(char *arg, char **copy, const char **loc)
{
    size_t len = strlen(arg);

    if (!reg_location_has_password(arg))
        return P11CA_OK;
    if (!(*copy = strdup(arg)))
        return p11ca_err_set(P11CA_E_NOMEM, "out of memory");
    snprintf(arg, len + 1, "%s", reg_location_shown(*copy));
    memset(arg + strlen(arg), 0, len - strlen(arg));
    *loc = *copy;
    return P11CA_OK;
}

static int migrate_args(struct cli *cli, int argc, char **argv,
                        struct migrate *m)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {0},
    };
    const struct cli_cmd *me = cli_cmd_find(cli_registry_cmds, "migrate");
    int o, rc;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me) == P11CA_OK ? 1 : -1;
        if (o == OPT_FROM) {
            free(m->from_copy);
            m->from_copy = NULL;
            m->from = optarg;
            if ((rc = migrate_hide(optarg, &m->from_copy, &m->from)))
                return rc;
        } else if (o == OPT_TO) {
            free(m->to_copy);
            m->to_copy = NULL;
            m->to = optarg;
            if ((rc = migrate_hide(optarg, &m->to_copy, &m->to)))
                return rc;
        } else {
            return cli_usage_error(me, "bad option");
        }
    }
    if (optind < argc)
        return cli_usage_error(me, "unexpected argument \"%s\"", argv[optind]);
    if (!m->from || !*m->from || !m->to || !*m->to)
        return cli_usage_error(me, "give --from LOCATION and --to LOCATION");
    if (strcmp(m->from, m->to) == 0)
        return cli_usage_error(me, "--from and --to name the same registry");
    snprintf(m->from_shown, sizeof(m->from_shown), "%s",
             reg_location_shown(m->from));
    snprintf(m->to_shown, sizeof(m->to_shown), "%s", reg_location_shown(m->to));
    return P11CA_OK;
}

/* A registry that is missing, not empty or whose copy does not check is
 * a registry problem (exit 4), as for every command that opens one; a
 * location that is not one stays bad input (exit 2). */
static int migrate_rc(int rc)
{
    if (rc == P11CA_E_NOTFOUND || rc == P11CA_E_EXISTS || rc == P11CA_E_STATE)
        return P11CA_E_REGISTRY;
    return rc;
}

/* The file of a SQLite location ("sqlite:PATH" or a bare path). */
static const char *sqlite_path(const char *loc)
{
    return loc && strncmp(loc, "sqlite:", 7) == 0 ? loc + 7 : loc;
}

/* A SQLite target this command created goes again when the copy failed,
 * with SQLite's companion files. */
static void migrate_undo(const struct migrate *m)
{
    static const char *const ext[] = {"", "-wal", "-shm", "-journal"};
    char path[4096];

    if (!m->new_file)
        return;
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        if ((size_t)snprintf(path, sizeof(path), "%s%s", m->new_file, ext[i])
            < sizeof(path))
            (void)unlink(path);
    }
}

/*
 * The target: refused when it holds a registry already (checked read-only
 * first, so that an older schema there is not migrated either), else
 * created or given its schema.
 */
static int migrate_open_target(struct migrate *m, reg **to)
{
    const char *path = sqlite_path(m->to);
    reg *probe = NULL;
    int rc, fd;

    *to = NULL;
    rc = reg_open_ex(m->to, REG_OPEN_READONLY, &probe);
    reg_close(probe);
    if (rc == P11CA_OK)
        return cli_error(
            P11CA_E_REGISTRY,
            "registry migrate: the target registry %s is not empty: a registry is only moved into a new one (an empty database, or a SQLite file that does not exist); nothing was written",
            m->to_shown);
    if (rc != P11CA_E_NOTFOUND) {
        return cli_error(migrate_rc(rc), "registry migrate: target: %s",
                         p11ca_err_message());
    } else if (!reg_location_is_pg(m->to)) {
        /* Made here with O_EXCL: only a file this command created is
         * removed again when the copy fails, never one that was there
         * already or that another process made in the meantime. */
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            return cli_error(P11CA_E_REGISTRY,
                             "registry migrate: target: cannot create %s: %s",
                             m->to_shown, strerror(errno));
        if (fd >= 0) {
            (void)close(fd);
            m->new_file = path;
        }
    }
    rc = reg_open_ex(m->to, REG_OPEN_CREATE, to);
    if (rc != P11CA_OK) {
        migrate_undo(m);
        return cli_error(migrate_rc(rc), "registry migrate: target: %s",
                         p11ca_err_message());
    }
    return P11CA_OK;
}

static void migrate_report(struct cli *cli, const struct migrate *m,
                           const reg_copy_count *counts)
{
    json_t *tables = NULL;

    if (cli->json) {
        tables = json_object();
        for (size_t i = 0; tables && i < REG_COPY_TABLES; i++)
            json_object_set_new(tables, counts[i].table,
                                json_integer((json_int_t)counts[i].rows));
        (void)cli_json_print(json_pack("{s:s, s:s, s:o, s:b}", "from",
                                       m->from_shown, "to", m->to_shown,
                                       "tables", tables, "verified", 1));
        return;
    }
    printf("registry %s copied to %s\n", cli_esc(m->from_shown),
           cli_esc(m->to_shown));
    for (size_t i = 0; i < REG_COPY_TABLES; i++)
        printf("  %-15s %zu rows\n", counts[i].table, counts[i].rows);
    printf(
        "verified: the same rows per table, the audit chain intact, every certificate's status as its audit trail says; set registry = in ca.cnf to the new location\n");
}

static int cmd_registry_migrate(struct cli *cli, int argc, char **argv)
{
    reg_copy_count counts[REG_COPY_TABLES];
    struct migrate m = {0};
    reg *from = NULL, *to = NULL;
    int rc = migrate_args(cli, argc, argv, &m);

    if (rc != P11CA_OK) {
        rc = rc > 0 ? P11CA_OK : rc;
        goto out;
    }
    /* The source first: a bad one leaves no target behind. */
    rc = reg_open_ex(m.from, REG_OPEN_READONLY, &from);
    if (rc != P11CA_OK) {
        rc = cli_error(migrate_rc(rc), "registry migrate: source: %s",
                       p11ca_err_message());
        goto out;
    }
    if ((rc = migrate_open_target(&m, &to)) != P11CA_OK)
        goto out;
    rc = reg_copy(from, to, counts);
    if (rc != P11CA_OK) {
        rc = cli_error(migrate_rc(rc), "registry migrate: %s",
                       p11ca_err_message());
        reg_close(to);
        to = NULL;
        migrate_undo(&m);
        goto out;
    }
    migrate_report(cli, &m, counts);
out:
    reg_close(to);
    reg_close(from);
    if (m.from_copy)
        OPENSSL_clear_free(m.from_copy, strlen(m.from_copy));
    if (m.to_copy)
        OPENSSL_clear_free(m.to_copy, strlen(m.to_copy));
    return rc;
}

const struct cli_cmd cli_registry_cmds[] = {
    {"registry", "migrate", "--from LOCATION --to LOCATION",
     "Copy a whole registry to another location or backend: SQLite to "
     "PostgreSQL, PostgreSQL to SQLite, or between two of a kind. A "
     "LOCATION is written like registry = in ca.cnf: sqlite:PATH (or a "
     "path), postgresql://... or postgresql:KEYWORD=VALUE ... (see "
     "docs/registry-postgresql.md). Every table is copied with its values "
     "and ids as stored: CAs, certificates with their statuses and status "
     "history, CRL numbers, the audit trail and its signed heads, so the "
     "chain's hashes and the heads' signatures stay valid. The source is "
     "opened read-only and never changed. The copy is one transaction on "
     "the target, committed only after the target has as many rows per "
     "table as the source, the same newest audit entry, an intact audit "
     "chain and every certificate's status as its audit trail says; "
     "otherwise no row is written (a SQLite file it created is removed; "
     "a PostgreSQL database keeps the empty tables for the next try). "
     "A target that holds anything is refused (exit 4). Afterwards point "
     "registry = in ca.cnf to the target and run p11ca audit verify. A "
     "password in a LOCATION is replaced on the command line that ps "
     "shows as soon as the options are read; ~/.pgpass keeps it off the "
     "command line altogether.",
     "--from LOCATION\tthe registry to copy (read only)\n"
     "--to LOCATION\tan empty registry: a SQLite file that does not exist "
     "yet, or an empty PostgreSQL database",
     cmd_registry_migrate},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
