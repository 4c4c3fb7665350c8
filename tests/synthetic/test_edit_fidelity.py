"""Edit fidelity's measurements on pictures whose answer is known: the world's own renderings of edits."""

import numpy as np

from genemi.synthetic.edit_fidelity import classify_pixels, dominant_colour, painted_shape
from genemi.synthetic.scenes import BACKGROUND, Scene, SceneObject, render


def test_an_exact_rendering_shows_the_asked_colour_and_shape():
    scene = Scene((SceneObject("circle", "red", "large", cell=(0, 0)),
                   SceneObject("star", "blue", "large", cell=(2, 2))))
    for shape, colour, texture in [("cross", "green", "plain"), ("triangle", "white", "striped"),
                                   ("hexagon", "purple", "plain")]:
        edited = scene.with_object(0, shape=shape, colour=colour, texture=texture)
        image = np.asarray(render(edited, 64).image)
        region = render(scene, 64).masks[0] | render(edited, 64).masks[0]
        assert dominant_colour(image[region]) == colour
        assert painted_shape(image, region, scene, 0, edited.objects[0]) == shape


def test_background_and_noise_show_no_colour():
    grey = np.tile(np.array(BACKGROUND, np.uint8), (50, 1))
    assert dominant_colour(grey) is None and set(classify_pixels(grey)) == {"background"}
    noise = np.random.default_rng(0).integers(0, 256, (200, 3)).astype(np.uint8)
    assert dominant_colour(noise) is None  # no palette colour covers a fifth of uniform noise
