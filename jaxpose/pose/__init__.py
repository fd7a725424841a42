"""Pose estimation inside jaxpose: OpenPose keypoints as the field computed them.

Modules:
  estimate     PoseEstimator (from_file, keypoints, keypoints_batch, maps, people)
               and the two protocols 'patn' (PCKh, the datasets' annotations) and
               'original' (CMU's demo)
  postprocess  peaks, limb scoring, grouping and the single-person choice, in numpy
  resize       scikit-image 0.14 and OpenCV INTER_CUBIC resampling, reimplemented
The network is jaxpose.models.openpose; weights are imported with
jaxpose.convert.import_checkpoint('openpose_body', path) and never shipped.
"""

from jaxpose.pose.estimate import PROTOCOLS
from jaxpose.pose.estimate import PoseEstimator
from jaxpose.pose.estimate import Protocol
