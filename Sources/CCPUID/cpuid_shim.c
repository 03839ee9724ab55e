#include "cpuid_shim.h"
#include <cpuid.h>
#include <string.h>

static unsigned long long read_xcr0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

dtrain_cpu_features dtrain_read_cpu_features(void) {
    dtrain_cpu_features f;
    memset(&f, 0, sizeof f);
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
    unsigned maxLeaf = a;
    memcpy(f.vendor, &b, 4);
    memcpy(f.vendor + 4, &d, 4);
    memcpy(f.vendor + 8, &c, 4);
    f.vendor[12] = 0;

    __get_cpuid(1, &a, &b, &c, &d);
    unsigned baseFamily = (a >> 8) & 0xF, baseModel = (a >> 4) & 0xF;
    f.family = baseFamily == 0xF ? baseFamily + ((a >> 20) & 0xFF) : baseFamily;
    f.model = (baseFamily == 0x6 || baseFamily == 0xF) ? (((a >> 16) & 0xF) << 4) + baseModel : baseModel;
    f.sse3 = c & (1u << 0);
    f.fma = c & (1u << 12);
    bool osxsave = c & (1u << 27);
    f.avx = c & (1u << 28);
    if (osxsave) {
        unsigned long long xcr0 = read_xcr0();
        f.osSavesAVX = (xcr0 & 0x6) == 0x6;             // XMM and YMM state
        f.osSavesAVX512 = (xcr0 & 0xE6) == 0xE6;        // and opmask, ZMM_Hi256, Hi16_ZMM
    }
    if (maxLeaf >= 7) {
        __get_cpuid_count(7, 0, &a, &b, &c, &d);
        f.avx2 = b & (1u << 5);
        f.avx512f = b & (1u << 16);
        f.avx512dq = b & (1u << 17);
        f.avx512bw = b & (1u << 30);
        f.avx512vl = b & (1u << 31);
        __get_cpuid_count(7, 1, &a, &b, &c, &d);
        f.avx512bf16 = a & (1u << 5);
    }
    return f;
}
