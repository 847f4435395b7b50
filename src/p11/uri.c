/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 7512 pkcs11: URIs, parsed and formatted by p11-kit's P11KitUri; the
 * PIN is kept apart so that no formatted URI ever shows it. */
#include "config.h"

#include "internal.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct p11_uri {
    P11KitUri *kit;
    char *pin_value; /* secure heap */
    char *pin_source;
    char *label; /* object=, NUL-terminated copy */
};

static const char *kit_reason(int r)
{
    const char *m = p11_kit_uri_message(r);

    return m ? m : "unknown error";
}

/*
 * The attributes of RFC 7512, with the size of the PKCS#11 field each one
 * matches (0: no fixed size).  p11-kit takes the last of a repeated
 * attribute and files a value too long for its field as "unrecognized":
 * uri_check_attrs says what is wrong instead.
 */
static const struct {
    const char *name;
    size_t max;
    const char *what;
} uri_attrs[] = {
    {"id", P11_MAX_ID_LEN, "CKA_ID"},
    {"library-description", 32, "library description"},
    {"library-manufacturer", 32, "library manufacturer"},
    {"library-version", 0, NULL},
    {"manufacturer", 32, "token manufacturer"},
    {"model", 16, "token model"},
    {"object", P11_MAX_LABEL_LEN, "object label"},
    {"serial", 16, "token serial number"},
    {"slot-description", 64, "slot description"},
    {"slot-id", 0, NULL},
    {"slot-manufacturer", 32, "slot manufacturer"},
    {"token", 32, "token label"},
    {"type", 0, NULL},
    {"module-name", 0, NULL},
    {"module-path", 0, NULL},
    {"pin-source", 0, NULL},
    {"pin-value", P11_MAX_PIN_LEN, "PIN"},
};

#define N_URI_ATTRS (sizeof(uri_attrs) / sizeof(uri_attrs[0]))

/* Bytes of the percent-encoded @v (@n characters) once decoded. */
static size_t decoded_len(const char *v, size_t n)
{
    size_t len = 0;

    for (size_t i = 0; i < n; len++)
        i += (v[i] == '%' && i + 2 < n) ? 3 : 1;
    return len;
}

static bool type_ok(const char *v, size_t n)
{
    static const char *const types[] = {"cert", "data", "private", "public",
                                        "secret-key"};

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i]) == n && strncmp(types[i], v, n) == 0)
            return true;
    return false;
}

/* Whether @v (@n characters) holds the encoded NUL "%00". */
static bool has_nul(const char *v, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++)
        if (v[i] == '%' && v[i + 1] == '0' && v[i + 2] == '0')
            return true;
    return false;
}

/*
 * One "name=value" of the URI (@n characters at @a), in its path or its
 * query (@query: other query attributes are p11-kit's to judge, as vendor
 * attributes); @seen marks the attributes met before.
 */
static CK_RV uri_check_attr(const char *a, size_t n, bool query, bool *seen)
{
    const char *eq = memchr(a, '=', n);
    size_t nlen = eq ? (size_t)(eq - a) : n, vlen = eq ? n - nlen - 1 : 0;
    const char *v = eq ? eq + 1 : "";
    size_t i;

    for (i = 0; i < N_URI_ATTRS; i++)
        if (strlen(uri_attrs[i].name) == nlen
            && strncmp(uri_attrs[i].name, a, nlen) == 0)
            break;
    if (i == N_URI_ATTRS && query)
        return CKR_OK;
    if (i == N_URI_ATTRS)
        return p11_error_set(
            P11_RV_URI_INVALID, NULL, NULL, NULL,
            "the attribute %.*s= is not in RFC 7512 (check the spelling of its name)",
            (int)(nlen > 64 ? 64 : nlen), a);
    if (seen[i])
        return p11_error_set(P11_RV_URI_INVALID, NULL, NULL, NULL,
                             "%s= appears twice in the URI: give it once",
                             uri_attrs[i].name);
    seen[i] = true;
    if (strcmp(uri_attrs[i].name, "type") == 0 && !type_ok(v, vlen))
        return p11_error_set(
            P11_RV_URI_INVALID, NULL, NULL, NULL,
            "type=%.*s is not an object type: cert, data, private, public or secret-key",
            (int)(vlen > 64 ? 64 : vlen), v);
    if (uri_attrs[i].max && decoded_len(v, vlen) > uri_attrs[i].max)
        return p11_error_set(P11_RV_URI_INVALID, NULL, NULL, NULL,
                             "%s= is %zu bytes long: at most %zu fit the %s",
                             uri_attrs[i].name, decoded_len(v, vlen),
                             uri_attrs[i].max, uri_attrs[i].what);
    if (strcmp(uri_attrs[i].name, "pin-value") == 0 && has_nul(v, vlen))
        return p11_error_set(
            P11_RV_URI_INVALID, NULL, NULL, NULL,
            "pin-value= holds a NUL byte (%%00): a PIN is text");
    return CKR_OK;
}

/* Each attribute of the path (";") and the query ("&") of @str, which
 * p11-kit has parsed already. */
static CK_RV uri_check_attrs(const char *str)
{
    bool seen[N_URI_ATTRS] = {false}, query = false;
    const char *p = str + 7; /* after "pkcs11:" */
    CK_RV rv = CKR_OK;
    size_t n;

    while (*p && rv == CKR_OK) {
        n = strcspn(p, query ? "&" : ";?");
        /* p11-kit reads what follows an empty path attribute as one
         * query attribute: "token=a;;object=b" would name no object. */
        if (n == 0 && !query && *p == ';')
            rv = p11_error_set(
                P11_RV_URI_INVALID, NULL, NULL, NULL,
                "the URI's path has an empty attribute (\";;\", or \";\" right after \"pkcs11:\"): remove the extra \";\"");
        else if (n > 0)
            rv = uri_check_attr(p, n, query, seen);
        p += n;
        query = query || *p == '?';
        if (*p)
            p++;
    }
    return rv;
}

/* Keep object= as a C string: no NUL inside, no longer than a label. */
static CK_RV copy_label(p11_uri *uri)
{
    CK_ATTRIBUTE *a = p11_kit_uri_get_attribute(uri->kit, CKA_LABEL);

    if (!a || a->ulValueLen == (CK_ULONG)-1)
        return CKR_OK;
    if (a->ulValueLen > P11_MAX_LABEL_LEN
        || memchr(a->pValue, '\0', a->ulValueLen))
        return p11_error_set(P11_RV_URI_INVALID, NULL, NULL, NULL,
                             "object= must be at most %d bytes without NUL",
                             P11_MAX_LABEL_LEN);
    uri->label = strndup(a->pValue, a->ulValueLen);
    if (!uri->label)
        return p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
    return CKR_OK;
}

CK_RV p11_uri_parse(const char *str, p11_uri **out)
{
    p11_uri *uri = NULL;
    const char *pin, *src;
    CK_RV rv = P11_RV_URI_INVALID;
    int r;

    return_val_if_fail(out != NULL, CKR_ARGUMENTS_BAD);
    *out = NULL;
    if (!str || strncasecmp(str, "pkcs11:", 7) != 0)
        return p11_error_set(P11_RV_URI_INVALID, NULL, NULL, NULL,
                             "a pkcs11: URI must start with \"pkcs11:\"");
    /* p11-kit drops white space wherever it is: "object=My Key" would
     * name "MyKey", and "&\vtype=" a query attribute "type". */
    if (str[strcspn(str, " \t\n\v\f\r")])
        return p11_error_set(
            P11_RV_URI_INVALID, NULL, NULL, NULL,
            "the URI holds white space, which p11-kit would drop (\"object=My Key\" would name \"MyKey\"): write a space as %%20");
    uri = calloc(1, sizeof(*uri));
    if (!uri || !(uri->kit = p11_kit_uri_new())) {
        rv = p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
        goto out;
    }
    r = p11_kit_uri_parse(str, P11_KIT_URI_FOR_ANY, uri->kit);
    if (r == P11_KIT_URI_NO_MEMORY) {
        /* Not the URI's fault: not an input error (exit 2) either. */
        rv = p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
        goto out;
    }
    if (r != P11_KIT_URI_OK) {
        p11_error_set(rv, NULL, NULL, NULL, "%s", kit_reason(r));
        goto out;
    }
    rv = uri_check_attrs(str);
    if (rv != CKR_OK)
        goto out;
    rv = P11_RV_URI_INVALID;
    if (p11_kit_uri_any_unrecognized(uri->kit)) {
        p11_error_set(
            rv, NULL, NULL, NULL,
            "the URI has an attribute that is not in RFC 7512 (check the spelling of each name before '=')");
        goto out;
    }
    rv = copy_label(uri);
    if (rv != CKR_OK)
        goto out;
    rv = P11_RV_URI_INVALID;
    pin = p11_kit_uri_get_pin_value(uri->kit);
    if (pin) {
        size_t n = strlen(pin);
        if (n > P11_MAX_PIN_LEN) {
            p11_error_set(rv, NULL, NULL, NULL, "pin-value is too long");
            goto out;
        }
        uri->pin_value = OPENSSL_secure_malloc(n + 1);
        if (!uri->pin_value) {
            rv = p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
            goto out;
        }
        memcpy(uri->pin_value, pin, n + 1);
        /* p11-kit frees its copy without wiping; overwrite it first. */
        OPENSSL_cleanse((char *)pin, n);
        p11_kit_uri_set_pin_value(uri->kit, NULL);
    }
    src = p11_kit_uri_get_pin_source(uri->kit);
    if (src) {
        if (strncmp(src, "file://", 7) == 0)
            src += 7;
        else if (strncmp(src, "file:", 5) == 0)
            src += 5;
        uri->pin_source = strdup(src);
        if (!uri->pin_source) {
            rv = p11_error_set(CKR_HOST_MEMORY, NULL, NULL, NULL, NULL);
            goto out;
        }
        /* Shown nowhere either: p11_uri_format prints no PIN attribute. */
        p11_kit_uri_set_pin_source(uri->kit, NULL);
    }
    *out = uri;
    uri = NULL;
    rv = CKR_OK;
out:
    p11_uri_free(uri);
    return rv;
}

void p11_uri_free(p11_uri *uri)
{
    if (!uri)
        return;
    if (uri->kit) {
        /* A URI refused before its PIN was moved out still holds it. */
        const char *pin = p11_kit_uri_get_pin_value(uri->kit);
        if (pin)
            OPENSSL_cleanse((char *)pin, strlen(pin));
        p11_kit_uri_free(uri->kit);
    }
    free(uri->label);
    if (uri->pin_value)
        OPENSSL_secure_clear_free(uri->pin_value, strlen(uri->pin_value));
    free(uri->pin_source);
    free(uri);
}

char *p11_uri_format(const p11_uri *uri)
{
    char *s = NULL;

    return_val_if_fail(uri != NULL, NULL);
    /* The PIN was taken out at parse time: nothing to hide here. */
    if (p11_kit_uri_format(uri->kit, P11_KIT_URI_FOR_ANY, &s) != P11_KIT_URI_OK)
        return NULL;
    return s;
}

P11KitUri *p11_uri_get0_kit(const p11_uri *uri)
{
    return uri->kit;
}

const char *p11_uri_get0_label(const p11_uri *uri)
{
    return uri->label;
}

const unsigned char *p11_uri_get0_id(const p11_uri *uri, size_t *len)
{
    CK_ATTRIBUTE *a = p11_kit_uri_get_attribute(uri->kit, CKA_ID);

    if (!a || a->ulValueLen == (CK_ULONG)-1) {
        *len = 0;
        return NULL;
    }
    *len = a->ulValueLen;
    return a->pValue;
}

CK_OBJECT_CLASS p11_uri_get_class(const p11_uri *uri)
{
    CK_ATTRIBUTE *a = p11_kit_uri_get_attribute(uri->kit, CKA_CLASS);

    if (!a || a->ulValueLen != sizeof(CK_OBJECT_CLASS))
        return (CK_OBJECT_CLASS)-1;
    return *(CK_OBJECT_CLASS *)a->pValue;
}

const char *p11_uri_get0_module_path(const p11_uri *uri)
{
    return p11_kit_uri_get_module_path(uri->kit);
}

const char *p11_uri_get0_module_name(const p11_uri *uri)
{
    return p11_kit_uri_get_module_name(uri->kit);
}

bool p11_uri_has_pin(const p11_uri *uri)
{
    return uri->pin_value != NULL || uri->pin_source != NULL;
}

bool p11_uri_names_token(const p11_uri *uri)
{
    /* p11-kit leaves a field it did not parse zeroed; one given (even
     * empty, "token=") is blank-padded, so its first byte is not 0. */
    const CK_TOKEN_INFO *ti;
    const CK_SLOT_INFO *si;

    if (!uri)
        return false;
    ti = p11_kit_uri_get_token_info(uri->kit);
    si = p11_kit_uri_get_slot_info(uri->kit);
    return ti->label[0] || ti->serialNumber[0] || ti->model[0]
           || ti->manufacturerID[0] || si->slotDescription[0]
           || si->manufacturerID[0]
           || p11_kit_uri_get_slot_id(uri->kit) != (CK_SLOT_ID)-1;
}

void p11_auth_from_uri(p11_auth *auth, const p11_uri *uri)
{
    memset(auth, 0, sizeof(*auth));
    if (!uri)
        return;
    auth->pin_value = uri->pin_value;
    auth->pin_source = uri->pin_source;
}

static void set_token_fields(P11KitUri *k, const p11_token *tok)
{
    CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(k);

    *ti = tok->info;
}

static char *format_kit(P11KitUri *k, P11KitUriType type)
{
    char *s = NULL;

    if (p11_kit_uri_format(k, type, &s) != P11_KIT_URI_OK)
        s = NULL;
    p11_kit_uri_free(k);
    return s;
}

char *p11_uri_for_object(const p11_token *tok, CK_OBJECT_CLASS cls,
                         const unsigned char *id, size_t id_len,
                         const char *label)
{
    P11KitUri *k = p11_kit_uri_new();
    CK_ATTRIBUTE a;

    if (!k)
        return NULL;
    set_token_fields(k, tok);
    if (cls != (CK_OBJECT_CLASS)-1) {
        a.type = CKA_CLASS;
        a.pValue = &cls;
        a.ulValueLen = sizeof(cls);
        p11_kit_uri_set_attribute(k, &a);
    }
    if (id && id_len) {
        a.type = CKA_ID;
        a.pValue = (void *)id;
        a.ulValueLen = id_len;
        p11_kit_uri_set_attribute(k, &a);
    }
    if (label && *label) {
        a.type = CKA_LABEL;
        a.pValue = (void *)label;
        a.ulValueLen = strlen(label);
        p11_kit_uri_set_attribute(k, &a);
    }
    return format_kit(k, P11_KIT_URI_FOR_OBJECT_ON_TOKEN);
}

char *p11_uri_for_token(const p11_token *tok)
{
    P11KitUri *k = p11_kit_uri_new();

    if (!k)
        return NULL;
    set_token_fields(k, tok);
    return format_kit(k, P11_KIT_URI_FOR_TOKEN);
}
