#!/bin/bash
# usage: phases.sh VARIANT THREADS CONFIG SECONDS
v=$1; t=$2; c=$3; s=${4:-10}
out=$(perf record -e cpu-clock -F 1000 -o /tmp/ph_$v.data /work/main/.venv/bin/python /work/main/results/2026-12-02/cl-phases-run.py $s $v $t $c 2>&1 | grep " ms")
n=$(echo "$out" | awk '{print $2}')
echo "$out"
perf report -i /tmp/ph_$v.data --no-children --sort sym -F overhead,sample,sym 2>/dev/null | grep -v "^#" | grep -v "^$" | awk -v n=$n '
{ samples=$2; sym=$0; 
  g="other";
  if (sym ~ /compute_grad_offset_and_mask/) g="offset/mask";
  else if (sym ~ /compute_grad_input/) g="col2im";
  else if (sym ~ /mkl_blas/) g="mkl";
  else if (sym ~ /compute_col2im_plan/) g="plan";
  else if (sym ~ /padded_copy/) g="padded";
  else if (sym ~ /cl_permute/) g="permute";
  else if (sym ~ /gc_collect|PyEval|_Py|visit_/) g="python";
  else if (sym ~ /copy_kernel|direct_copy|memmove|memset|__memset/) g="copy/memset";
  tot[g]+=samples }
END { for (g in tot) printf "  %-12s %7.1f ms/call\n", g, tot[g]/n }' | sort -k2 -rn
