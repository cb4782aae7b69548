"""Each registered model's dreamable layers and their channel counts, written down.

``ModelSpec.layer_channels`` used to find these with a shape-only pass on the meta device, which
loads torch's decompositions and meta kernels: 1.4 s of a 6 s dream on 2 cores. A table costs
nothing; ``tests/test_fast_path.py`` checks it against that pass, and a model missing here still gets it.
"""

LAYER_CHANNELS: dict[str, dict[str, int]] = {
    'efficientnet_lite0': {'stem': 32, 'block0': 16, 'block1': 24, 'block2': 24, 'block3': 40, 'block4': 40, 'block5': 80, 'block6': 80, 'block7': 80, 'block8': 112, 'block9': 112, 'block10': 112, 'block11': 192, 'block12': 192, 'block13': 192, 'block14': 192, 'block15': 320, 'head': 1280},
    'inception_v3': {'Mixed_5b': 256, 'Mixed_5c': 288, 'Mixed_5d': 288, 'Mixed_6a': 768, 'Mixed_6b': 768, 'Mixed_6c': 768, 'Mixed_6d': 768, 'Mixed_6e': 768, 'Mixed_7a': 1280, 'Mixed_7b': 2048, 'Mixed_7c': 2048},
    'googlenet': {'inception3a': 256, 'inception3b': 480, 'inception4a': 512, 'inception4b': 512, 'inception4c': 512, 'inception4d': 528, 'inception4e': 832, 'inception5a': 832, 'inception5b': 1024},
    'resnet50': {'layer1': 256, 'layer2': 512, 'layer3': 1024, 'layer4': 2048},
    'vgg16': {'conv1_1': 64, 'relu1_1': 64, 'conv1_2': 64, 'relu1_2': 64, 'conv2_1': 128, 'relu2_1': 128, 'conv2_2': 128, 'relu2_2': 128, 'conv3_1': 256, 'relu3_1': 256, 'conv3_2': 256, 'relu3_2': 256, 'conv3_3': 256, 'relu3_3': 256, 'conv4_1': 512, 'relu4_1': 512, 'conv4_2': 512, 'relu4_2': 512, 'conv4_3': 512, 'relu4_3': 512, 'conv5_1': 512, 'relu5_1': 512, 'conv5_2': 512, 'relu5_2': 512, 'conv5_3': 512, 'relu5_3': 512},
    'vgg19': {'conv1_1': 64, 'relu1_1': 64, 'conv1_2': 64, 'relu1_2': 64, 'conv2_1': 128, 'relu2_1': 128, 'conv2_2': 128, 'relu2_2': 128, 'conv3_1': 256, 'relu3_1': 256, 'conv3_2': 256, 'relu3_2': 256, 'conv3_3': 256, 'relu3_3': 256, 'conv3_4': 256, 'relu3_4': 256, 'conv4_1': 512, 'relu4_1': 512, 'conv4_2': 512, 'relu4_2': 512, 'conv4_3': 512, 'relu4_3': 512, 'conv4_4': 512, 'relu4_4': 512, 'conv5_1': 512, 'relu5_1': 512, 'conv5_2': 512, 'relu5_2': 512, 'conv5_3': 512, 'relu5_3': 512, 'conv5_4': 512, 'relu5_4': 512},
}
