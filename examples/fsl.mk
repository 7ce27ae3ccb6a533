# The pipeline of examples/Makefile with FSL, for a machine where FSL is installed: skull strip
# a T1 image (bet), then register the brain to the MNI template (flirt). Input names are
# nipype's (in_file, frac, reference, ...): see `imcache run fsl.BET --help`.
#
#   make -f examples/fsl.mk T1=sub-01_T1w.nii.gz
#
# FSLOUTPUTTYPE names the outputs' format and enters each run's key; it is fixed here because
# the targets are named .nii.gz (a NIFTI from the environment would name the mask .nii).

IMCACHE ?= imcache
export IMCACHE_BASE_DIR ?= $(CURDIR)/.cache
export FSLOUTPUTTYPE := NIFTI_GZ
T1 ?= T1.nii.gz
REFERENCE ?= $(FSLDIR)/data/standard/MNI152_T1_2mm_brain.nii.gz

all: brain_mni.nii.gz

# Skull strip (nipype: fsl.BET(in_file=..., frac=0.5, mask=True)); the mask comes along.
brain.nii.gz: $(T1)
	$(IMCACHE) run fsl.BET --in-file $< --frac 0.5 --mask --out-file $@ \
	  --export out_file=$@ --export mask_file=brain_mask.nii.gz --overwrite

# Affine registration to the template, 12 degrees of freedom (nipype: fsl.FLIRT).
brain_mni.nii.gz: brain.nii.gz
	$(IMCACHE) run fsl.FLIRT --in-file $< --reference $(REFERENCE) --dof 12 --out-file $@ \
	  --out-matrix-file brain_mni.mat --export out_file=$@ --export out_matrix_file=brain_mni.mat \
	  --overwrite

clean:
	rm -f brain.nii.gz brain_mask.nii.gz brain_mni.nii.gz brain_mni.mat

.PHONY: all clean
