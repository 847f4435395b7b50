#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Fills a p11ca registry with N synthetic certificate rows for the
# benchmark: hex serials, CNs host-0..N-1, OUs, validity spread over two
# years, 10% revoked (at most 100,000).  The DER of every row is one real
# certificate (from a directory of PEM files), enough for listing and CRLs.
import glob
import os
import random
import sqlite3
import subprocess
import sys
import time

db, n, certdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pem = sorted(glob.glob(os.path.join(certdir, "*.pem")))[0]
der = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"],
                     check=True, capture_output=True).stdout
con = sqlite3.connect(db)
ca_id = con.execute("select id from cas limit 1").fetchone()[0]
now = int(time.time())
rnd = random.Random(42)
revoked = 0
con.execute("begin")
rows = []
for i in range(n):
    # As p11ca stores serials: lower-case hex without leading zeros.
    serial = "%x" % (rnd.getrandbits(159) | (1 << 150))
    nb = now - rnd.randrange(0, 365 * 86400)
    na = nb + rnd.randrange(30 * 86400, 2 * 365 * 86400)
    status, rev_at, reason = "activated", None, None
    if revoked < 100000 and i % 10 == 0:
        # Revoked and not yet expired: every one goes into the CRL.
        na = max(na, now + 60 * 86400)
        status, rev_at, reason = "revoked", nb + 3600, 1
        revoked += 1
    cn = "host-%d" % i
    rows.append((serial, ca_id, "CN=" + cn + ",OU=fleet", "CN=Big CA", cn,
                 "fleet", cn if status == "activated" else cn + "#old",
                 "client", "issued", status, nb, na, nb, rev_at, reason, der))
    if len(rows) == 10000:
        con.executemany("insert into certs (serial, ca_id, subject, issuer, cn, "
                        "ou, client_id, profile, origin, status, not_before, "
                        "not_after, recorded_at, revoked_at, reason, der) "
                        "values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        rows = []
if rows:
    con.executemany("insert into certs (serial, ca_id, subject, issuer, cn, "
                    "ou, client_id, profile, origin, status, not_before, "
                    "not_after, recorded_at, revoked_at, reason, der) "
                    "values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
con.commit()
con.execute("analyze")
con.close()
print("registry: %d certificates, %d revoked" % (n, revoked))
