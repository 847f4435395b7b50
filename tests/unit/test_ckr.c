/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of CK_RV names and sentences and the per-thread last error. */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Only for a token with a label, to see it named in messages. */
#include "p11/internal.h"
#include "p11/p11.h"

/* A code and its spelling in the header. */
/* clang-format off */
#define CODE(c) { c, #c }
/* clang-format on */

/* Every CKR_ code of PKCS#11 2.40 that <p11-kit/pkcs11.h> defines. */
static const struct {
    CK_RV rv;
    const char *name;
} std_codes[] = {
    CODE(CKR_OK),
    CODE(CKR_CANCEL),
    CODE(CKR_HOST_MEMORY),
    CODE(CKR_SLOT_ID_INVALID),
    CODE(CKR_GENERAL_ERROR),
    CODE(CKR_FUNCTION_FAILED),
    CODE(CKR_ARGUMENTS_BAD),
    CODE(CKR_NO_EVENT),
    CODE(CKR_NEED_TO_CREATE_THREADS),
    CODE(CKR_CANT_LOCK),
    CODE(CKR_ATTRIBUTE_READ_ONLY),
    CODE(CKR_ATTRIBUTE_SENSITIVE),
    CODE(CKR_ATTRIBUTE_TYPE_INVALID),
    CODE(CKR_ATTRIBUTE_VALUE_INVALID),
    CODE(CKR_ACTION_PROHIBITED),
    CODE(CKR_DATA_INVALID),
    CODE(CKR_DATA_LEN_RANGE),
    CODE(CKR_DEVICE_ERROR),
    CODE(CKR_DEVICE_MEMORY),
    CODE(CKR_DEVICE_REMOVED),
    CODE(CKR_ENCRYPTED_DATA_INVALID),
    CODE(CKR_ENCRYPTED_DATA_LEN_RANGE),
    CODE(CKR_FUNCTION_CANCELED),
    CODE(CKR_FUNCTION_NOT_PARALLEL),
    CODE(CKR_FUNCTION_NOT_SUPPORTED),
    CODE(CKR_KEY_HANDLE_INVALID),
    CODE(CKR_KEY_SIZE_RANGE),
    CODE(CKR_KEY_TYPE_INCONSISTENT),
    CODE(CKR_KEY_NOT_NEEDED),
    CODE(CKR_KEY_CHANGED),
    CODE(CKR_KEY_NEEDED),
    CODE(CKR_KEY_INDIGESTIBLE),
    CODE(CKR_KEY_FUNCTION_NOT_PERMITTED),
    CODE(CKR_KEY_NOT_WRAPPABLE),
    CODE(CKR_KEY_UNEXTRACTABLE),
    CODE(CKR_MECHANISM_INVALID),
    CODE(CKR_MECHANISM_PARAM_INVALID),
    CODE(CKR_OBJECT_HANDLE_INVALID),
    CODE(CKR_OPERATION_ACTIVE),
    CODE(CKR_OPERATION_NOT_INITIALIZED),
    CODE(CKR_PIN_INCORRECT),
    CODE(CKR_PIN_INVALID),
    CODE(CKR_PIN_LEN_RANGE),
    CODE(CKR_PIN_EXPIRED),
    CODE(CKR_PIN_LOCKED),
    CODE(CKR_SESSION_CLOSED),
    CODE(CKR_SESSION_COUNT),
    CODE(CKR_SESSION_HANDLE_INVALID),
    CODE(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    CODE(CKR_SESSION_READ_ONLY),
    CODE(CKR_SESSION_EXISTS),
    CODE(CKR_SESSION_READ_ONLY_EXISTS),
    CODE(CKR_SESSION_READ_WRITE_SO_EXISTS),
    CODE(CKR_SIGNATURE_INVALID),
    CODE(CKR_SIGNATURE_LEN_RANGE),
    CODE(CKR_TEMPLATE_INCOMPLETE),
    CODE(CKR_TEMPLATE_INCONSISTENT),
    CODE(CKR_TOKEN_NOT_PRESENT),
    CODE(CKR_TOKEN_NOT_RECOGNIZED),
    CODE(CKR_TOKEN_WRITE_PROTECTED),
    CODE(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    CODE(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
    CODE(CKR_USER_ALREADY_LOGGED_IN),
    CODE(CKR_USER_NOT_LOGGED_IN),
    CODE(CKR_USER_PIN_NOT_INITIALIZED),
    CODE(CKR_USER_TYPE_INVALID),
    CODE(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    CODE(CKR_USER_TOO_MANY_TYPES),
    CODE(CKR_WRAPPED_KEY_INVALID),
    CODE(CKR_WRAPPED_KEY_LEN_RANGE),
    CODE(CKR_WRAPPING_KEY_HANDLE_INVALID),
    CODE(CKR_WRAPPING_KEY_SIZE_RANGE),
    CODE(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
    CODE(CKR_RANDOM_SEED_NOT_SUPPORTED),
    CODE(CKR_RANDOM_NO_RNG),
    CODE(CKR_DOMAIN_PARAMS_INVALID),
    CODE(CKR_CURVE_NOT_SUPPORTED),
    CODE(CKR_BUFFER_TOO_SMALL),
    CODE(CKR_SAVED_STATE_INVALID),
    CODE(CKR_INFORMATION_SENSITIVE),
    CODE(CKR_STATE_UNSAVEABLE),
    CODE(CKR_CRYPTOKI_NOT_INITIALIZED),
    CODE(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    CODE(CKR_MUTEX_BAD),
    CODE(CKR_MUTEX_NOT_LOCKED),
    CODE(CKR_NEW_PIN_MODE),
    CODE(CKR_NEXT_OTP),
    CODE(CKR_EXCEEDED_MAX_ITERATIONS),
    CODE(CKR_FIPS_SELF_TEST_FAILED),
    CODE(CKR_LIBRARY_LOAD_FAILED),
    CODE(CKR_PIN_TOO_WEAK),
    CODE(CKR_PUBLIC_KEY_INVALID),
    CODE(CKR_FUNCTION_REJECTED),
};

/* Our vendor-defined codes and the names p11_rv_name() gives them. */
static const struct {
    CK_RV rv;
    const char *name;
} own_codes[] = {
    {P11_RV_URI_INVALID, "P11CA_URI_INVALID"},
    {P11_RV_NO_TOKEN, "P11CA_NO_TOKEN"},
    {P11_RV_NO_OBJECT, "P11CA_NO_OBJECT"},
    {P11_RV_AMBIGUOUS, "P11CA_AMBIGUOUS"},
    {P11_RV_PIN_SOURCE, "P11CA_PIN_SOURCE"},
    {P11_RV_PIN_REFUSED, "P11CA_PIN_REFUSED"},
    {P11_RV_NO_PIN, "P11CA_NO_PIN"},
    {P11_RV_BAD_INPUT, "P11CA_BAD_INPUT"},
    {P11_RV_NO_MODULE, "P11CA_NO_MODULE"},
    {P11_RV_NO_KEY_MATCH, "P11CA_NO_KEY_MATCH"},
    {P11_RV_EXISTS, "P11CA_EXISTS"},
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static int clear_error(void **state)
{
    (void)state;
    p11_error_clear();
    return 0;
}

static void test_ckr_names_pin_incorrect(void **state)
{
    (void)state;
    assert_string_equal(p11_rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
    assert_string_equal(p11_rv_text(CKR_PIN_INCORRECT), "the PIN is incorrect");
}

static void test_ckr_names_ok(void **state)
{
    (void)state;
    assert_string_equal(p11_rv_name(CKR_OK), "CKR_OK");
    assert_string_equal(p11_rv_text(CKR_OK), "success");
}

static void test_ckr_names_session_handle_invalid(void **state)
{
    (void)state;
    assert_string_equal(p11_rv_name(CKR_SESSION_HANDLE_INVALID),
                        "CKR_SESSION_HANDLE_INVALID");
    assert_non_null(strstr(p11_rv_text(CKR_SESSION_HANDLE_INVALID), "session"));
}

static void test_ckr_names_every_standard_code(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(std_codes); i++) {
        const char *text = p11_rv_text(std_codes[i].rv);

        assert_string_equal(p11_rv_name(std_codes[i].rv), std_codes[i].name);
        assert_non_null(text);
        assert_true(text[0] != '\0');
        assert_string_not_equal(text, "unknown error code");
        assert_string_not_equal(text, "vendor-defined error of the module");
    }
}

static void test_ckr_names_our_vendor_codes(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(own_codes); i++) {
        const char *text = p11_rv_text(own_codes[i].rv);

        assert_string_equal(p11_rv_name(own_codes[i].rv), own_codes[i].name);
        assert_true(text[0] != '\0');
        assert_string_not_equal(text, "vendor-defined error of the module");
    }
}

static void test_ckr_explains_no_token(void **state)
{
    (void)state;
    assert_string_equal(p11_rv_name(P11_RV_NO_TOKEN), "P11CA_NO_TOKEN");
    assert_non_null(strstr(p11_rv_text(P11_RV_NO_TOKEN), "token"));
}

static void test_ckr_names_unknown_code_in_hex(void **state)
{
    (void)state;
    assert_string_equal(p11_rv_name(0x12345UL), "CKR_0x00012345");
    assert_string_equal(p11_rv_text(0x12345UL), "unknown error code");
}

static void test_ckr_names_unknown_vendor_code_in_hex(void **state)
{
    CK_RV rv = CKR_VENDOR_DEFINED | 0x42UL;

    (void)state;
    assert_non_null(strstr(p11_rv_name(rv), "CKR_0x"));
    assert_non_null(strstr(p11_rv_name(rv), "42"));
    assert_string_equal(p11_rv_text(rv), "vendor-defined error of the module");
}

static void test_ckr_error_starts_as_no_error(void **state)
{
    (void)state;
    assert_string_equal(p11_error_message(), "no error");
    assert_int_equal(p11_error_rv(), CKR_OK);
}

static void test_ckr_error_set_returns_rv(void **state)
{
    (void)state;
    assert_int_equal(p11_error_set(CKR_DEVICE_ERROR, NULL, NULL, NULL, NULL),
                     CKR_DEVICE_ERROR);
    assert_int_equal(p11_error_rv(), CKR_DEVICE_ERROR);
}

static void test_ckr_error_set_formats_call_code_and_detail(void **state)
{
    (void)state;
    p11_error_set(CKR_PIN_EXPIRED, "C_Sign", NULL, NULL, "change it with %s",
                  "p11tool");
    assert_string_equal(
        p11_error_message(),
        "C_Sign: CKR_PIN_EXPIRED (the PIN has expired): change it with p11tool");
}

static void test_ckr_error_set_names_token_and_object(void **state)
{
    /* p11_token_describe() reads only the label. */
    p11_token tok = {0};

    (void)state;
    strcpy(tok.label, "CA1");
    p11_error_set(CKR_PIN_EXPIRED, "C_Sign", &tok, "key \"root\"", "%s",
                  "detail");
    assert_string_equal(
        p11_error_message(),
        "C_Sign on token \"CA1\", key \"root\": CKR_PIN_EXPIRED (the PIN has expired): detail");
    assert_int_equal(p11_error_rv(), CKR_PIN_EXPIRED);
}

static void test_ckr_error_set_without_context_has_code_only(void **state)
{
    (void)state;
    p11_error_set(CKR_DEVICE_REMOVED, NULL, NULL, NULL, NULL);
    assert_string_equal(p11_error_message(),
                        "CKR_DEVICE_REMOVED (the token was removed)");
}

static void test_ckr_error_set_own_code_keeps_detail_and_name(void **state)
{
    (void)state;
    p11_error_set(P11_RV_NO_TOKEN, NULL, NULL, NULL, "no token \"%s\"", "X");
    assert_non_null(strstr(p11_error_message(), "no token \"X\""));
    assert_non_null(strstr(p11_error_message(), "P11CA_NO_TOKEN"));
    assert_int_equal(p11_error_rv(), P11_RV_NO_TOKEN);
}

static void test_ckr_error_set_can_wrap_previous_message(void **state)
{
    (void)state;
    p11_error_set(CKR_PIN_LOCKED, "C_Login", NULL, NULL, NULL);
    /* The old message is an argument of the new one: no overlap damage. */
    p11_error_set(CKR_PIN_LOCKED, "signing", NULL, NULL, "%s",
                  p11_error_message());
    assert_string_equal(
        p11_error_message(),
        "signing: CKR_PIN_LOCKED (the PIN is locked): C_Login: CKR_PIN_LOCKED (the PIN is locked)");
}

static void test_ckr_error_clear_resets_to_no_error(void **state)
{
    (void)state;
    p11_error_set(CKR_PIN_INCORRECT, "C_Login", NULL, NULL, NULL);
    p11_error_clear();
    assert_string_equal(p11_error_message(), "no error");
    assert_int_equal(p11_error_rv(), CKR_OK);
}

static void test_ckr_error_truncates_overlong_detail(void **state)
{
    size_t big = 8192;
    char *detail = malloc(big + 1);
    const char *msg;

    (void)state;
    assert_non_null(detail);
    memset(detail, 'x', big);
    detail[big] = '\0';
    p11_error_set(CKR_FUNCTION_FAILED, "C_Sign", NULL, NULL, "%s", detail);
    msg = p11_error_message();
    assert_true(strlen(msg) < big);
    assert_true(strlen(msg) >= 512);
    assert_true(strncmp(msg, "C_Sign: CKR_FUNCTION_FAILED", 27) == 0);
    assert_int_equal(msg[strlen(msg) - 1], 'x');
    assert_int_equal(p11_error_rv(), CKR_FUNCTION_FAILED);
    free(detail);
}

static void test_ckr_error_truncates_overlong_call_name(void **state)
{
    size_t big = 4096;
    char *call = malloc(big + 1);

    (void)state;
    assert_non_null(call);
    memset(call, 'c', big);
    call[big] = '\0';
    p11_error_set(CKR_FUNCTION_FAILED, call, NULL, "key", "%s", "detail");
    assert_true(strlen(p11_error_message()) < big);
    assert_int_equal(p11_error_rv(), CKR_FUNCTION_FAILED);
    free(call);
}

struct thread_result {
    char before[64];
    char after[128];
    CK_RV rv;
};

static void *other_thread(void *arg)
{
    struct thread_result *r = arg;

    strncpy(r->before, p11_error_message(), sizeof(r->before) - 1);
    p11_error_set(CKR_DEVICE_ERROR, "C_Sign", NULL, NULL, NULL);
    strncpy(r->after, p11_error_message(), sizeof(r->after) - 1);
    r->rv = p11_error_rv();
    return NULL;
}

static void test_ckr_error_is_per_thread(void **state)
{
    struct thread_result r = {0};
    pthread_t th;

    (void)state;
    p11_error_set(CKR_PIN_INCORRECT, "C_Login", NULL, NULL, NULL);
    assert_int_equal(pthread_create(&th, NULL, other_thread, &r), 0);
    assert_int_equal(pthread_join(th, NULL), 0);

    /* The new thread started clean and saw only its own error... */
    assert_string_equal(r.before, "no error");
    assert_string_equal(
        r.after, "C_Sign: CKR_DEVICE_ERROR (the token or its reader failed)");
    assert_int_equal(r.rv, CKR_DEVICE_ERROR);
    /* ...and left this thread's error alone. */
    assert_string_equal(p11_error_message(),
                        "C_Login: CKR_PIN_INCORRECT (the PIN is incorrect)");
    assert_int_equal(p11_error_rv(), CKR_PIN_INCORRECT);
}

/* ---- p11_rv_class: one table for the CLI and the provider ---- */

static void test_ckr_class_of_request_errors_is_input(void **state)
{
    static const CK_RV rvs[] = {P11_RV_URI_INVALID, P11_RV_BAD_INPUT,
                                P11_RV_AMBIGUOUS, P11_RV_EXISTS,
                                P11_RV_NO_KEY_MATCH};

    (void)state;
    for (size_t i = 0; i < sizeof(rvs) / sizeof(rvs[0]); i++)
        assert_int_equal(p11_rv_class(rvs[i]), P11_CLASS_INPUT);
}

static void test_ckr_class_of_pin_errors_is_pin(void **state)
{
    static const CK_RV rvs[] = {
        CKR_PIN_INCORRECT,  CKR_PIN_INVALID, CKR_PIN_LEN_RANGE,
        CKR_PIN_EXPIRED,    CKR_PIN_LOCKED,  P11_RV_PIN_SOURCE,
        P11_RV_PIN_REFUSED, P11_RV_NO_PIN,
    };

    (void)state;
    for (size_t i = 0; i < sizeof(rvs) / sizeof(rvs[0]); i++)
        assert_int_equal(p11_rv_class(rvs[i]), P11_CLASS_PIN);
}

static void test_ckr_class_of_other_codes(void **state)
{
    (void)state;
    assert_int_equal(p11_rv_class(CKR_OK), P11_CLASS_OK);
    assert_int_equal(p11_rv_class(P11_RV_NO_TOKEN), P11_CLASS_NOT_FOUND);
    assert_int_equal(p11_rv_class(P11_RV_NO_OBJECT), P11_CLASS_NOT_FOUND);
    assert_int_equal(p11_rv_class(CKR_MECHANISM_INVALID),
                     P11_CLASS_UNSUPPORTED);
    assert_int_equal(p11_rv_class(CKR_HOST_MEMORY), P11_CLASS_NO_MEMORY);
    assert_int_equal(p11_rv_class(CKR_DEVICE_ERROR), P11_CLASS_TOKEN);
    assert_int_equal(p11_rv_class(P11_RV_NO_MODULE), P11_CLASS_TOKEN);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup(name, clear_error)
    const struct CMUnitTest tests[] = {
        /* First and without setup: nothing has set an error yet. */
        cmocka_unit_test(test_ckr_error_starts_as_no_error),
        T(test_ckr_names_pin_incorrect),
        T(test_ckr_names_ok),
        T(test_ckr_names_session_handle_invalid),
        T(test_ckr_names_every_standard_code),
        T(test_ckr_names_our_vendor_codes),
        T(test_ckr_explains_no_token),
        T(test_ckr_names_unknown_code_in_hex),
        T(test_ckr_names_unknown_vendor_code_in_hex),
        T(test_ckr_error_set_returns_rv),
        T(test_ckr_error_set_formats_call_code_and_detail),
        T(test_ckr_error_set_names_token_and_object),
        T(test_ckr_error_set_without_context_has_code_only),
        T(test_ckr_error_set_own_code_keeps_detail_and_name),
        T(test_ckr_error_set_can_wrap_previous_message),
        T(test_ckr_error_clear_resets_to_no_error),
        T(test_ckr_error_truncates_overlong_detail),
        T(test_ckr_error_truncates_overlong_call_name),
        T(test_ckr_error_is_per_thread),
        T(test_ckr_class_of_request_errors_is_input),
        T(test_ckr_class_of_pin_errors_is_pin),
        T(test_ckr_class_of_other_codes),
    };
#undef T

    /* TAP on stdout even when run by hand, one line per test. */
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
