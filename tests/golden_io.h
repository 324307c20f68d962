/* Golden bundle files: little-endian, a header and named arrays.
 *
 *   offset  size  field
 *   0       8     magic "PEQAGLD1"
 *   8       4     u32 format version (1)
 *   12      4     u32 number of arrays A
 *   16      4     i32 bits
 *   20      4     u32 reserved (0)
 *   24      8     i64 group size (as stored: K for per-channel)
 *   32      8     i64 M
 *   40      8     i64 N
 *   48      8     i64 K
 *   56      8     u64 seed
 *   64      ...   A arrays, each: char name[16] (NUL-padded), u32 dtype (1 f32, 2 u8, 3 i8,
 *                 4 u32), u32 ndim (1 or 2), u64 dim0, u64 dim1 (1 when ndim = 1), then
 *                 dim0 * dim1 elements, little-endian, then zero bytes up to a multiple of 8.
 */
#ifndef PEQA_GOLDEN_IO_H
#define PEQA_GOLDEN_IO_H
#include <stddef.h>
#include <stdint.h>

enum { GDT_F32 = 1, GDT_U8 = 2, GDT_I8 = 3, GDT_U32 = 4 };

typedef struct {
    char name[17];
    uint32_t dtype, ndim;
    uint64_t d0, d1;
    void *data; /* owned */
} garray;

typedef struct {
    int32_t bits;
    int64_t group, m, n, k;
    uint64_t seed;
    int narrays;
    garray arr[24];
} gbundle;

size_t gdt_size(uint32_t dtype);
/* Adds a copy of data; returns 0 on failure. */
int gbundle_add(gbundle *b, const char *name, uint32_t dtype, uint64_t d0, uint64_t d1, const void *data);
const garray *gbundle_get(const gbundle *b, const char *name);
void gbundle_free(gbundle *b);
/* write: returns 0 on success and fills *fnv (FNV-1a 64 of the file bytes). */
int gbundle_write(const gbundle *b, const char *path, uint64_t *fnv);
/* read: returns 0 on success, else writes a message into err. */
int gbundle_read(gbundle *b, const char *path, uint64_t *fnv, char *err, size_t errlen);
uint64_t fnv1a64(const void *data, size_t n, uint64_t h);
#define FNV1A64_INIT 0xcbf29ce484222325ull

#endif
