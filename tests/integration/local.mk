# SPDX-License-Identifier: Apache-2.0
# tests/integration: TAP shell scripts against a per-run SoftHSM2 token.
CLI_TESTS = \
	tests/integration/cli-keygen.sh \
	tests/integration/cli-cert.sh \
	tests/integration/cli-errors.sh \
	tests/integration/cli-p11kit.sh \
	tests/integration/cli-valgrind.sh \
	tests/integration/cli-help.sh
TESTS += $(CLI_TESTS)
EXTRA_DIST += $(CLI_TESTS)

