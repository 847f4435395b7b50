/* SPDX-License-Identifier: Apache-2.0 */
/* p11ca registry migrate: a whole registry moved to another location or
 * backend (SQLite <-> PostgreSQL), checked before it is committed. */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry/registry.h"

enum {
    OPT_FROM = 1,
    OPT_TO,
};

/* "Shown" forms of locations: a message names both. */
#define MIGRATE_SHOWN_MAX 512

struct migrate {
    const char *from, *to;
    char from_shown[MIGRATE_SHOWN_MAX], to_shown[MIGRATE_SHOWN_MAX];
    const char *new_file; /* a SQLite target this command created */
};

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
    int o;

    while ((o = cli_getopt(cli, argc, argv, "h", opts)) != -1) {
        if (o == 'h')
            return cli_help(me) == P11CA_OK ? 1 : -1;
        if (o == OPT_FROM)
            m->from = optarg;
        else if (o == OPT_TO)
            m->to = optarg;
        else
            return cli_usage_error(me, "bad option");
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
    reg *probe = NULL;
    int rc;

    *to = NULL;
    rc = reg_open_ex(m->to, REG_OPEN_READONLY, &probe);
    reg_close(probe);
    if (rc == P11CA_OK)
        return cli_error(
            P11CA_E_REGISTRY,
            "registry migrate: the target registry %s is not empty: a registry is only moved into a new one (an empty database, or a SQLite file that does not exist); nothing was written",
            m->to_shown);
    if (rc != P11CA_E_NOTFOUND)
        return cli_error(migrate_rc(rc), "registry migrate: target: %s",
                         p11ca_err_message());
    if (!reg_location_is_pg(m->to) && access(sqlite_path(m->to), F_OK) != 0
        && errno == ENOENT)
        m->new_file = sqlite_path(m->to);
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

    if (rc != P11CA_OK)
        return rc > 0 ? P11CA_OK : rc;
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
     "registry = in ca.cnf to the target and run p11ca audit verify.",
     "--from LOCATION\tthe registry to copy (read only)\n"
     "--to LOCATION\tan empty registry: a SQLite file that does not exist "
     "yet, or an empty PostgreSQL database",
     cmd_registry_migrate},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
