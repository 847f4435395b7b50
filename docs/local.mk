# SPDX-License-Identifier: Apache-2.0
# docs/: man pages and guides. docs/p11ca.1 is made by `p11ca man` from the
# command table that also prints --help; `make update-man` refreshes it and
# tests/integration/cli-help.sh fails when it is stale.
dist_man_MANS += docs/p11ca.1 docs/p11ca-provider.7
EXTRA_DIST += docs/internals/p11.md docs/internals/registry.md \
	docs/internals/fuzzing.md docs/performance.md \
	docs/ocsp.md docs/internals/ocsp.md docs/internals/enroll.md \
	docs/ca-operator-guide.md docs/registry-postgresql.md docs/serve.md \
	docs/p11ca-serve.service docs/internals/server.md docs/openapi.yaml \
	docs/api.md

update-man: src/p11ca$(EXEEXT)
	$(top_builddir)/src/p11ca man >$(top_srcdir)/docs/p11ca.1
.PHONY: update-man
