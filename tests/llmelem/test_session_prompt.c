/* Prompt assembly per task against hand-written strings from specs/anygpt.md. */
#include "anygpt/limits.h"
#include "anygpt/session.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define SYS "You are an AI assistant named MMGPT who can understand and generate multimodal content, including text, speech, images and audio."
#define SP "<\xF0\x9F\x97\xA3\xEF\xB8\x8F"
#define IM "<\xF0\x9F\x91\x80"
#define MU "<\xF0\x9F\x8E\xB6"

static void check(const char *name, char *got, const char *want) {
    if (got && want && !strcmp(got, want)) {
        passed++;
    } else if (!got && !want) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL %s\n got: %s\nwant: %s\n", name, got ? got : "(null)", want ? want : "(null)");
    }
    free(got);
}

int main(void) {
    int32_t sp[3] = {5, 0, 1023};
    int32_t im[32];
    char imstr[1024] = "<soim>";
    for (int i = 0; i < 32; i++) {
        im[i] = i * 200;
        snprintf(imstr + strlen(imstr), sizeof imstr - strlen(imstr), IM "%d>", i * 200);
    }
    strcat(imstr, "<eoim>");
    int32_t mu[8] = {1, 2, 3, 4, 2047, 0, 7, 9};

    check("speech string", ag_modality_string(AG_MODALITY_SPEECH, sp, 3), "<sosp>" SP "5>" SP "0>" SP "1023><eosp>");
    check("music string", ag_modality_string(AG_MODALITY_MUSIC, mu, 8),
          "<somu>" MU "1>" MU "2050>" MU "4099>" MU "6148>" MU "2047>" MU "2048>" MU "4103>" MU "6153><eomu>");
    check("music partial frame", ag_modality_string(AG_MODALITY_MUSIC, mu, 7), NULL);
    int32_t bad = 1024;
    check("speech code range", ag_modality_string(AG_MODALITY_SPEECH, &bad, 1), NULL);
    check("no modality", ag_modality_string(AG_MODALITY_NONE, sp, 1), NULL);

    ag_prompt_desc d = {.task = AG_TASK_CHAT, .text = "Hello!"};
    check("chat", ag_prompt_build(&d), SYS "\n[Human]: Hello!<eoh>\n[MMGPT]:");
    ag_chat_turn h[2] = {{"Hi", "Hello, how can I help?"}, {"Name?", "MMGPT."}};
    d.history = h;
    d.n_history = 2;
    check("chat history", ag_prompt_build(&d),
          SYS "\n[Human]: Hi<eoh>\n[MMGPT]: Hello, how can I help?<eos>\n[Human]: Name?<eoh>\n[MMGPT]: MMGPT.<eos>"
              "\n[Human]: Hello!<eoh>\n[MMGPT]:");
    d = (ag_prompt_desc){.task = AG_TASK_CHAT, .system = "S", .modality = AG_MODALITY_SPEECH, .codes = sp, .n_codes = 1,
                         .instruction = "Please interpret the user's voice commands, provide text responses."};
    check("voice chat", ag_prompt_build(&d),
          "S\n[Human]: <sosp>" SP "5><eosp> Please interpret the user's voice commands, provide text responses.<eoh>\n[MMGPT]:");
    d = (ag_prompt_desc){.task = AG_TASK_ASR, .modality = AG_MODALITY_SPEECH, .codes = sp, .n_codes = 2};
    check("asr", ag_prompt_build(&d),
          SYS "\n[Human]: <sosp>" SP "5>" SP "0><eosp> Please transcribe the given speech.<eoh>\n[MMGPT]:");
    d = (ag_prompt_desc){.task = AG_TASK_TTS, .text = "Good morning."};
    check("tts", ag_prompt_build(&d), SYS "\n[Human]: Good morning. Please read the given text.<eoh>\n[MMGPT]: <sosp>");
    d = (ag_prompt_desc){.task = AG_TASK_CAPTION, .codes = im, .n_codes = 32};
    char want[4096];
    snprintf(want, sizeof want, SYS "\n[Human]: %s Please describe the picture briefly.<eoh>\n[MMGPT]:", imstr);
    check("caption", ag_prompt_build(&d), want);
    d = (ag_prompt_desc){.task = AG_TASK_TEXT_TO_IMAGE, .text = "a red car"};
    check("t2i", ag_prompt_build(&d), SYS "\n[Human]: a red car Please generation an image.<eoh>\n[MMGPT]: <soim>");
    d = (ag_prompt_desc){.task = AG_TASK_TEXT_TO_MUSIC, .text = "calm piano"};
    check("t2m", ag_prompt_build(&d),
          SYS "\n[Human]: calm piano Please compose a piece of music from the given text.<eoh>\n[MMGPT]: <somu>");
    d = (ag_prompt_desc){.task = AG_TASK_MUSIC_CAPTION, .codes = mu, .n_codes = 4};
    check("music caption", ag_prompt_build(&d),
          SYS "\n[Human]: <somu>" MU "1>" MU "2050>" MU "4099>" MU "6148><eomu> Please interpret the given music and "
              "provide a textual description.<eoh>\n[MMGPT]:");
    d = (ag_prompt_desc){.task = AG_TASK_ASR, .modality = AG_MODALITY_IMAGE, .codes = im, .n_codes = 32};
    check("asr with image codes", ag_prompt_build(&d), NULL);
    d = (ag_prompt_desc){.task = AG_TASK_RAW, .text = "[Human]: x"};
    check("raw", ag_prompt_build(&d), "[Human]: x");
    d = (ag_prompt_desc){.task = (ag_task)99};
    check("bad task", ag_prompt_build(&d), NULL);
    /* limits.h: a message just over AG_MAX_MESSAGE_BYTES is refused (before the prompt is built) */
    char *big = malloc((size_t)AG_MAX_MESSAGE_BYTES + 2);
    memset(big, 'a', (size_t)AG_MAX_MESSAGE_BYTES + 1);
    big[AG_MAX_MESSAGE_BYTES + 1] = 0;
    d = (ag_prompt_desc){.task = AG_TASK_CHAT, .text = big};
    check("message over the limit", ag_prompt_build(&d), NULL);
    big[AG_MAX_MESSAGE_BYTES] = 0;
    char *at_limit = ag_prompt_build(&d);
    if (at_limit && strlen(at_limit) > AG_MAX_MESSAGE_BYTES)
        passed++;
    else
        failed++, printf("FAIL message at the limit refused\n");
    free(at_limit);
    free(big);
    if (ag_task_from_name("text-to-music") == AG_TASK_TEXT_TO_MUSIC && ag_task_from_name("nope") == -1 &&
        !strcmp(ag_task_name(AG_TASK_MUSIC_CAPTION), "music-caption"))
        passed++;
    else
        failed++;
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
