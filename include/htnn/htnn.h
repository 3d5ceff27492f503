/*
 * libhtnn - hard-threshold neural networks trained by feasible target
 * propagation (Friesen & Domingos, ICLR 2018).
 * SPDX-License-Identifier: MIT
 *
 * htnn.h - the one header a program includes; it includes every public
 * header.  See doc/guide.md for a tour and README.md for a quick start.
 */
#ifndef HTNN_H
#define HTNN_H

#include "common.h"
#include "net.h"
#include "optimizer.h"
#include "heuristic.h"
#include "train.h"
#include "ftprop.h"
#include "data.h"
#include "packed.h"
#include "reduce.h"

#endif /* HTNN_H */
