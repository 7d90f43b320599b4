/* Read-only view of a zip archive in memory (central directory, ZIP64 aware). Only stored
 * (uncompressed) entries can be read: that is what torch.save writes. */
#ifndef AG_CONVERT_ZIP_H
#define AG_CONVERT_ZIP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name;
    uint16_t method;   /* 0 = stored */
    uint16_t flags;
    const uint8_t *data; /* NULL when not stored */
    uint64_t size;
} zip_entry;

typedef struct {
    zip_entry *e;
    size_t n;
    size_t *by_name; /* entry indices sorted by name (then index): zip_find is a binary search */
} zip_archive;

/* Parse; label names the file in errors. Compressed entries are listed (data NULL); asking for
 * one with zip_find_data is the error. */
int zip_open(zip_archive *z, const uint8_t *base, size_t size, const char *label);
void zip_close(zip_archive *z);
const zip_entry *zip_find(const zip_archive *z, const char *name);
/* The stored bytes of an entry, or NULL with an error naming the entry (absent/compressed). */
const uint8_t *zip_find_data(const zip_archive *z, const char *name, uint64_t *size, const char *label);

#endif
