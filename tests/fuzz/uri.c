/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: pkcs11: URIs through p11_uri_parse and p11_uri_format.  A
 * URI is refused with a message or parsed; a parsed one formats without
 * its PIN, and the formatted text parses again to the same text. */
#include "config.h"

#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include "p11/p11.h"

/* What the accessors say must agree with what a URI may hold. */
static void check_fields(const p11_uri *uri)
{
    const char *label = p11_uri_get0_label(uri);
    size_t id_len = 0;
    p11_auth auth;

    FUZZ_CHECK(!label || strlen(label) <= P11_MAX_LABEL_LEN);
    (void)p11_uri_get0_id(uri, &id_len);
    (void)p11_uri_get_class(uri);
    (void)p11_uri_get0_module_path(uri);
    (void)p11_uri_get0_module_name(uri);
    (void)p11_uri_names_token(uri);
    p11_auth_from_uri(&auth, uri);
    FUZZ_CHECK(p11_uri_has_pin(uri)
               == (auth.pin_value != NULL || auth.pin_source != NULL));
    FUZZ_CHECK(!auth.pin_value || strlen(auth.pin_value) <= P11_MAX_PIN_LEN);
}

/* Whether the formatted URI @text has the attribute @name (not merely
 * those letters inside a value: "object=spin-value=x" has none). */
static bool has_attr(const char *text, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = strstr(text, name); p; p = strstr(p + 1, name))
        if (p > text && strchr(":;?&", p[-1]) && p[n] == '=')
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *str = fuzz_strndup(data, size), *text = NULL, *again_text = NULL;
    p11_uri *uri = NULL, *again = NULL;
    CK_RV rv;

    p11_error_clear();
    rv = p11_uri_parse(str, &uri);
    if (rv != CKR_OK) {
        /* Refused: no URI, and a reason for the user. */
        FUZZ_CHECK(uri == NULL);
        FUZZ_CHECK(p11_error_rv() == rv);
        FUZZ_CHECK(p11_error_message()[0] != '\0');
        goto out;
    }
    FUZZ_CHECK(uri != NULL);
    check_fields(uri);
    text = p11_uri_format(uri);
    FUZZ_CHECK(text != NULL);
    /* Formatted for humans: never the PIN (STYLE.md, section 4). */
    FUZZ_CHECK(!has_attr(text, "pin-value"));
    /* What we print, we read back, and print the same way. */
    rv = p11_uri_parse(text, &again);
    if (rv != CKR_OK)
        fprintf(stderr, "formatted \"%s\" does not parse: %s\n", text,
                p11_error_message());
    FUZZ_CHECK(rv == CKR_OK);
    check_fields(again);
    FUZZ_CHECK(p11_uri_has_pin(uri) || !p11_uri_has_pin(again));
    again_text = p11_uri_format(again);
    FUZZ_CHECK(again_text != NULL);
    FUZZ_CHECK(strcmp(text, again_text) == 0);
out:
    free(again_text);
    free(text);
    p11_uri_free(again);
    p11_uri_free(uri);
    free(str);
    return 0;
}
