/* The Vulkan op dispatch table: one row per op (see vk_internal.h for how to add one). */
#include "vulkan/vk_internal.h"
#include "vulkan/ag_vk_config.h"

#define ROW(OP, name) [AG_OP_##OP] = {AG_OP_##OP, vk_supports_##name, vk_op_##name}

static const vk_op_entry table[AG_OP_COUNT] = {
    ROW(CPY, cpy),
    ROW(ADD, add),
    ROW(MUL, mul),
    ROW(SCALE, scale),
    ROW(RMS_NORM, rms_norm),
    ROW(LAYER_NORM, layer_norm),
    ROW(GROUP_NORM, group_norm),
    ROW(SOFTMAX, softmax),
    ROW(ROPE, rope),
    ROW(UNARY, unary),
    ROW(SNAKE, snake),
    ROW(GLU, glu),
    ROW(PAD, pad),
    ROW(UPSAMPLE, upsample),
    ROW(GET_ROWS, get_rows),
    ROW(CONCAT, concat),
    ROW(ARGMAX, argmax),
#if AG_VK_HAVE_HEAVY
    ROW(MUL_MAT, mul_mat),
    ROW(CONV1D, conv1d),
    ROW(CONV_TRANSPOSE1D, conv_transpose1d),
    ROW(CONV2D, conv2d),
    ROW(LSTM, lstm),
    ROW(VQ_ARGMIN, vq_argmin),
    ROW(ATTENTION, attention),
#endif
};

const vk_op_entry *vk_op_lookup(ag_op op)
{
    if ((int)op < 0 || op >= AG_OP_COUNT || !table[op].run)
        return NULL;
    return &table[op];
}
