# SPDX-License-Identifier: Apache-2.0
# docs/: man pages (roff generated from Markdown, both committed) and guides.
dist_man_MANS += docs/p11ca.1
EXTRA_DIST += docs/p11ca.1.md docs/internals/p11.md
