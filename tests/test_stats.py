"""wnet-seg-stats: exact per-channel mean/std, unreadable files skipped."""

from __future__ import annotations

import numpy as np
from PIL import Image

from wnet_seg.data.datasets import screenshot_files
from wnet_seg.data.stats import channel_stats, main


def test_channel_stats_exact(tmp_path, capsys):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (8, 12, 3), dtype=np.uint8) for _ in range(3)]
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(tmp_path / f"{i}.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    mean, std, used = channel_stats(screenshot_files(tmp_path, None)[0])
    allpix = np.concatenate([a.reshape(-1, 3) for a in arrays]) / 255.0
    np.testing.assert_allclose(mean, allpix.mean(0), atol=1e-4)
    np.testing.assert_allclose(std, allpix.std(0), atol=1e-4)
    assert used == 3
    main([str(tmp_path)])
    assert "data.mean=[" in capsys.readouterr().out
