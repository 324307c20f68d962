/* Fills the kernel table with the scalar reference: every slot, every bit width. */
#include "../peqa_kernels.h"

void peqa_unpack__ref(const peqa_qw *, int64_t, int64_t, uint8_t *, int64_t);
void peqa_dequant__ref(const peqa_qw *, int64_t, int64_t, float *, int64_t);
void peqa_fwd__ref(const peqa_qw *, int64_t, int64_t, int64_t, int64_t, const float *, int64_t,
                   float *, int64_t);
void peqa_gscale__ref(const peqa_qw *, int64_t, int64_t, int64_t, const float *, int64_t,
                      const float *, int64_t, float *);
void peqa_gzero__ref(const peqa_qw *, int64_t, int64_t, int64_t, const float *, int64_t,
                     const float *, int64_t, float *);
void peqa_ginput__ref(const peqa_qw *, int64_t, int64_t, int64_t, int64_t, const float *, int64_t,
                      float *, int64_t);
void peqa_qact__ref(int64_t, int64_t, int64_t, const float *, int64_t, int8_t *, int64_t, float *,
                    int64_t);
void peqa_fwd_i8__ref(const peqa_qw *, int64_t, int64_t, int64_t, int64_t, const int8_t *, int64_t,
                      const float *, int64_t, float *, int64_t);

void peqa_sgemm_nt__ref(int64_t, int64_t, int64_t, int64_t, int64_t, const float *, int64_t,
                        const float *, int64_t, float *, int64_t);
void peqa_sgemm_nn__ref(int64_t, int64_t, int64_t, int64_t, int64_t, const float *, int64_t,
                        const float *, int64_t, float *, int64_t);
void peqa_sgemm_tn__ref(int64_t, int64_t, int64_t, int64_t, int64_t, const float *, int64_t,
                        const float *, int64_t, float *, int64_t);

void peqa_attn_fwd_head__ref(const peqa_attn_dims *, int64_t, const float *, const float *, const float *,
                             float *, float *, float *);
void peqa_attn_bwd_group__ref(const peqa_attn_dims *, int64_t, const float *, const float *, const float *,
                              const float *, const float *, float *, float *, float *, float *);

void peqa_kernels_init_ref(peqa_kernels *k)
{
    k->isa = "scalar";
    for (int b = 0; b < PEQA_NBITS; b++) {
        k->unpack[b] = peqa_unpack__ref, k->unpack_name[b] = "peqa_unpack__ref";
        k->dequant[b] = peqa_dequant__ref, k->dequant_name[b] = "peqa_dequant__ref";
        k->fwd_gemv[b] = peqa_fwd__ref, k->fwd_gemv_name[b] = "peqa_fwd__ref";
        k->fwd_gemm[b] = peqa_fwd__ref, k->fwd_gemm_name[b] = "peqa_fwd__ref";
        k->gscale[b] = peqa_gscale__ref, k->gscale_name[b] = "peqa_gscale__ref";
        k->gzero[b] = peqa_gzero__ref, k->gzero_name[b] = "peqa_gzero__ref";
        k->ginput[b] = peqa_ginput__ref, k->ginput_name[b] = "peqa_ginput__ref";
        k->fwd_i8_gemv[b] = peqa_fwd_i8__ref, k->fwd_i8_gemv_name[b] = "peqa_fwd_i8__ref";
        k->fwd_i8_gemm[b] = peqa_fwd_i8__ref, k->fwd_i8_gemm_name[b] = "peqa_fwd_i8__ref";
    }
    k->qact = peqa_qact__ref, k->qact_name = "peqa_qact__ref";
    k->sgemm_nt = peqa_sgemm_nt__ref, k->sgemm_nt_name = "peqa_sgemm_nt__ref";
    k->sgemm_nn = peqa_sgemm_nn__ref, k->sgemm_nn_name = "peqa_sgemm_nn__ref";
    k->attn_fwd_head = peqa_attn_fwd_head__ref, k->attn_fwd_head_name = "peqa_attn_fwd_head__ref";
    k->attn_bwd_group = peqa_attn_bwd_group__ref, k->attn_bwd_group_name = "peqa_attn_bwd_group__ref";
    k->sgemm_tn = peqa_sgemm_tn__ref, k->sgemm_tn_name = "peqa_sgemm_tn__ref";
}
