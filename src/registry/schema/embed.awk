# SPDX-License-Identifier: Apache-2.0
# Turns the migrations NNN_<what>.sql (given in order) into a C file with
# one string per migration and the table reg_sqlite_migrations[] (schema.h),
# or, with -v backend=pg, reg_pg_migrations[] (schema/pg/).
function flush() {
    if (name != "")
        printf "    ;\n"
}
BEGIN {
    if (backend == "")
        backend = "sqlite"
    print "/* Generated from src/registry/schema/NNN_<what>.sql by embed.awk: do not edit. */"
    print "#include \"config.h\""
    print ""
    print "#include \"registry/schema.h\""
    n = 0
    name = ""
}
FNR == 1 {
    flush()
    name = FILENAME
    sub(/.*\//, "", name)
    sub(/\.sql$/, "", name)
    if (name !~ /^[0-9][0-9][0-9]_[a-z0-9_]+$/) {
        print "embed.awk: " FILENAME ": not named NNN_<what>.sql" > "/dev/stderr"
        exit 1
    }
    n++
    names[n] = name
    versions[n] = substr(name, 1, 3) + 0
    printf "\nstatic const char sql_%s[] =\n", name
}
{
    line = $0
    gsub(/\\/, "\\\\", line)
    gsub(/"/, "\\\"", line)
    printf "    \"%s\\n\"\n", line
}
END {
    if (n == 0) {
        print "embed.awk: no migrations" > "/dev/stderr"
        exit 1
    }
    flush()
    print ""
    printf "const struct reg_migration reg_%s_migrations[] = {\n", backend
    for (i = 1; i <= n; i++)
        printf "    { %d, \"%s\", sql_%s },\n", versions[i], names[i], names[i]
    print "};"
    printf "const size_t reg_%s_migrations_n =\n", backend
    printf "    sizeof(reg_%s_migrations) / sizeof(reg_%s_migrations[0]);\n", \
        backend, backend
}
