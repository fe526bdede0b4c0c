/* rewardc: reward-model training in C. One include for the whole public API. */
#ifndef REWARDC_H
#define REWARDC_H

#include "rewardc/status.h"
#include "rewardc/io.h"
#include "rewardc/safetensors.h"
#include "rewardc/tokenizer.h"
#include "rewardc/model.h"
#include "rewardc/train.h"
#include "rewardc/trainer.h"
#include "rewardc/data.h"
#include "rewardc/eval.h"
#include "rewardc/workflow.h"
#include "rewardc/threads.h"

#endif
