/* Shared by the fuzz targets (tests/fuzz/fuzz_*.c): each defines LLVMFuzzerTestOneInput and is
 * linked either with libFuzzer (-Dfuzz=true, clang) or with replay_main.c, which runs the
 * committed corpus once in every build (suite 'fuzz'). Helpers here keep the targets short. */
#ifndef AG_FUZZ_UTIL_H
#define AG_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes the input to this process's scratch file for `tag` ($TMPDIR or /tmp,
 * "agfuzz-PID-TAG") and returns its path (static storage, one per tag slot); aborts when it
 * cannot (a harness problem, not a finding). */
const char *fz_write_tmp(const char *tag, const uint8_t *data, size_t size);
/* A scratch directory "agfuzz-PID-TAG.d" (created once, emptied of the names given later). */
const char *fz_tmp_dir(const char *tag);
/* Model loaders read files: the input is a GGUF *header* (the weights of a real model would make
 * the fuzzer mutate megabytes of floats). When the header parses far enough to know where each
 * tensor's data lies, the written file is extended with zeros (a sparse file) up to the end of
 * the last tensor, at most max_total bytes, so the loaders see a complete file whose shapes and
 * KVs come from the input. Returns the path; *padded tells whether zeros were added. */
const char *fz_write_gguf_padded(const char *tag, const uint8_t *data, size_t size, size_t max_total,
                                 bool *padded);
/* Total bytes of tensor data the header declares (0 when it does not parse). */
uint64_t fz_gguf_declared_bytes(const uint8_t *data, size_t size);

/* Folder-reading readers (tokenizer folders): the input is split at FZ_SPLIT into parts, part k
 * written as dir/names[k] (an empty part: the file is absent). Returns the directory. */
#define FZ_SPLIT "\n#--8<--#\n"
const char *fz_split_to_dir(const char *tag, const uint8_t *data, size_t size, const char *const *names, int n);

/* A refusal must say why: aborts (a finding) when ag_last_error() is empty after `what` failed. */
void fz_expect_error(const char *what);

/* Reading structured parameters from the front of an input (FuzzedDataProvider-style). */
typedef struct {
    const uint8_t *p;
    size_t n;
} fz_reader;
uint8_t fz_u8(fz_reader *r);
uint32_t fz_u32(fz_reader *r);
/* A value in [lo, hi] from the next 4 bytes. */
int64_t fz_range(fz_reader *r, int64_t lo, int64_t hi);

#endif
