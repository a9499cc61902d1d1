/*
 * LD_PRELOAD shim for softflowd 1.1.0 (Debian 12): turn on libpcap's immediate mode.
 *
 * softflowd opens live captures with pcap_set_timeout(p, 0). With Linux TPACKET_V3 that
 * means "wake me when a 256 KiB block is full": on a quiet interface softflowd never sees
 * a packet and never exports a flow (upstream: irino/softflowd pull request #71, open).
 * This wraps pcap_set_timeout, which softflowd calls between pcap_create and
 * pcap_activate, to also ask for immediate delivery with a 100 ms timeout.
 */
#define _GNU_SOURCE
#include <dlfcn.h>

typedef struct pcap pcap_t;
typedef int (*setter)(pcap_t *, int);

int pcap_set_timeout(pcap_t *p, int ms)
{
    setter real_timeout = (setter)dlsym(RTLD_NEXT, "pcap_set_timeout");
    setter immediate = (setter)dlsym(RTLD_NEXT, "pcap_set_immediate_mode");
    if (immediate != 0)
        immediate(p, 1);
    if (real_timeout == 0)
        return -1;
    return real_timeout(p, ms > 0 ? ms : 100);
}
