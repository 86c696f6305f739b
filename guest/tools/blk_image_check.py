#!/usr/bin/env python3
"""guest/tools/blk_image_check.py: checks a raw disk image written by the guest's `blk` workload.

Every 4 KiB block that is not all zero must be a well-formed block pattern (docs/guest-abi.md,
"Block pattern"): magic "RBK1", CRC-32 (zlib) of bytes 8..4095 equal to the stored CRC, the
stored block index equal to the block's position and, with --seed, the stored seed equal to it.

Usage: blk_image_check.py IMAGE [--seed S] [--blocks N]
--blocks N: exactly N blocks must be non-zero (the image was all zero before the run).
Prints `blk_image_check: N blocks ok` and exits 0, or names the first bad block and exits 1.
"""
import argparse
import struct
import sys
import zlib

BLOCK = 4096
MAGIC = 0x314B4252


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--blocks", type=int, default=None)
    args = parser.parse_args()
    ok = 0
    zero = bytes(BLOCK)
    with open(args.image, "rb") as f:
        index = 0
        while True:
            block = f.read(BLOCK)
            if len(block) < BLOCK:
                break
            if block != zero:
                magic, crc, seed, _iteration, lba = struct.unpack_from("<IIQQQ", block)
                problem = None
                if magic != MAGIC:
                    problem = f"magic {magic:#x}"
                elif crc != zlib.crc32(block[8:]):
                    problem = f"crc {crc:#x} != {zlib.crc32(block[8:]):#x}"
                elif lba != index:
                    problem = f"stored block index {lba}"
                elif args.seed is not None and seed != args.seed:
                    problem = f"seed {seed}"
                if problem:
                    print(f"blk_image_check: block {index}: {problem}")
                    return 1
                ok += 1
            index += 1
    if ok == 0 or (args.blocks is not None and ok != args.blocks):
        print(f"blk_image_check: {ok} written blocks, want {args.blocks or 'some'}")
        return 1
    print(f"blk_image_check: {ok} blocks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
