/* SPDX-License-Identifier: Apache-2.0 */
/* The smallest PKCS#11 program that signs once: C_Initialize, find the
 * token, log in, find the key, sign a SHA-256 value, C_Finalize.  The
 * benchmark compares one `openssl dgst -sign` process with this one. */
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST *f;
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CK_SLOT_ID slots[16], slot = 0;
    CK_ULONG n = 16, found = 0, siglen;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE key;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    unsigned char hash[32] = {1}, sig[512];
    char pin[128];
    FILE *pf;
    void *dl;

    if (argc != 5) {
        fprintf(stderr, "usage: raw-sign MODULE TOKEN LABEL PINFILE\n");
        return 2;
    }
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_LABEL, argv[3], strlen(argv[3])}};
    pf = fopen(argv[4], "r");
    if (!pf || !fgets(pin, sizeof(pin), pf))
        return 2;
    fclose(pf);
    pin[strcspn(pin, "\r\n")] = '\0';
    dl = dlopen(argv[1], RTLD_NOW);
    if (!dl || !(get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList"))
        || get(&f) != CKR_OK || f->C_Initialize(&args) != CKR_OK
        || f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return 1;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK
            && strncmp((char *)ti.label, argv[2], strlen(argv[2])) == 0
            && ti.label[strlen(argv[2])] == ' ')
            slot = slots[i];
    }
    siglen = sizeof(sig);
    if (f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK
        || f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin)) != CKR_OK
        || f->C_FindObjectsInit(s, t, 2) != CKR_OK
        || f->C_FindObjects(s, &key, 1, &found) != CKR_OK || found != 1
        || f->C_FindObjectsFinal(s) != CKR_OK
        || f->C_SignInit(s, &m, key) != CKR_OK
        || f->C_Sign(s, hash, sizeof(hash), sig, &siglen) != CKR_OK)
        return 1;
    f->C_CloseSession(s);
    f->C_Finalize(NULL);
    fwrite(sig, 1, siglen, stdout);
    return 0;
}
