from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fingerspell.data.labels import LETTERS
from fingerspell.inference.handfinder import square_around as hand_box_square
from fingerspell.photos.dataset import PhotoSetError, load_photo_set


def write_png(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((40, 60), value, np.uint8)).save(path)


def test_image_folder_layout_reads_letters_from_folder_names(tmp_path):
    write_png(tmp_path / "A" / "one.png")
    write_png(tmp_path / "b" / "nested" / "two.png")
    (tmp_path / "A" / "notes.txt").write_text("not an image")
    photos = load_photo_set(tmp_path, LETTERS)
    assert [(p.letter, p.path.name) for p in photos] == [("A", "one.png"), ("B", "two.png")]


def test_hidden_folders_and_files_are_not_photos(tmp_path):
    """Jupyter's .ipynb_checkpoints and macOS's ._ files sit in real folders; predict skips them too."""
    write_png(tmp_path / "A" / "one.png")
    write_png(tmp_path / ".ipynb_checkpoints" / "one.png")
    write_png(tmp_path / "A" / "._one.png")
    write_png(tmp_path / "A" / ".thumbs" / "one.png")
    photos = load_photo_set(tmp_path, LETTERS)
    assert [(p.letter, p.path.name) for p in photos] == [("A", "one.png")]


def test_unknown_letter_folder_is_one_clear_error(tmp_path):
    write_png(tmp_path / "J" / "x.png")
    with pytest.raises(PhotoSetError, match=r"folder name 'J' is not one of the model's letters"):
        load_photo_set(tmp_path, LETTERS)


def test_empty_set_and_missing_source(tmp_path):
    with pytest.raises(PhotoSetError, match="no images found"):
        load_photo_set(tmp_path, LETTERS)
    with pytest.raises(PhotoSetError, match="no such folder"):
        load_photo_set(tmp_path / "nope", LETTERS)


def test_csv_with_boxes_and_groups(tmp_path):
    write_png(tmp_path / "img" / "a.png")
    write_png(tmp_path / "img" / "b.png")
    (tmp_path / "set.csv").write_text(
        "path,letter,photo_id,box_cx,box_cy,box_w,box_h\nimg/a.png,a,p1,0.5,0.5,0.2,0.4\nimg/b.png,Y,p1,,,,\n"
    )
    photos = load_photo_set(tmp_path / "set.csv", LETTERS, group_column="photo_id")
    assert [p.letter for p in photos] == ["A", "Y"]
    assert {p.group for p in photos} == {"p1"}
    assert photos[0].box == (0.5, 0.5, 0.2, 0.4)
    assert photos[1].box is None


def test_empty_group_cell_names_its_line(tmp_path):
    write_png(tmp_path / "img" / "a.png")
    (tmp_path / "set.csv").write_text("path,letter,photo_id\nimg/a.png,A,p1\nimg/a.png,B\nimg/a.png,C, \n")
    with pytest.raises(PhotoSetError) as err:
        load_photo_set(tmp_path / "set.csv", LETTERS, group_column="photo_id")
    assert str(err.value) == (
        f"{tmp_path / 'set.csv'}: line 3: no photo_id value to group by; fill it in, or leave out --group-column"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("file,letter\nx.png,A\n", "lacks column"),
        ("path,letter\nmissing.png,A\n", r"line 2: image 'missing.png' not found"),
        ("path,letter\nimg/a.png,Z\n", r"line 2: letter 'Z' is not one of"),
    ],
)
def test_csv_faults_name_the_line(tmp_path, content, message):
    write_png(tmp_path / "img" / "a.png")
    (tmp_path / "set.csv").write_text(content)
    with pytest.raises(PhotoSetError, match=message):
        load_photo_set(tmp_path / "set.csv", LETTERS)


def test_hand_box_square_has_margin_and_stays_inside():
    left, top, right, bottom = hand_box_square((0.5, 0.5, 0.2, 0.1), 400, 200)
    assert right - left == pytest.approx(bottom - top) == pytest.approx(80 * 1.3)
    assert (left + right) / 2 == pytest.approx(200)
    # a box at the corner is shifted inside, and never larger than the short side
    box = hand_box_square((0.02, 0.02, 0.9, 0.9), 400, 200)
    assert min(box[0], box[1]) >= 0
    assert box[2] <= 400
    assert box[3] <= 200
    assert box[3] - box[1] == pytest.approx(200)


@pytest.mark.parametrize(
    ("box", "line"),
    [("0.5,0.5,-1,0.3", 3), ("0.5,0.5,0.2,0", 3), ("0.5,0.5,0,0", 3)],
)
def test_non_positive_hand_box_is_refused_with_its_line(tmp_path, box, line):
    """A zero or negative box crops nothing; it must be caught at listing, naming the CSV line."""
    write_png(tmp_path / "img" / "a.png")
    (tmp_path / "set.csv").write_text(
        f"path,letter,box_cx,box_cy,box_w,box_h\nimg/a.png,A,0.5,0.5,0.2,0.3\nimg/a.png,B,{box}\n"
    )
    with pytest.raises(PhotoSetError, match=rf"set\.csv: line {line}: hand box size must be positive"):
        load_photo_set(tmp_path / "set.csv", LETTERS)


def test_non_finite_hand_box_is_refused(tmp_path):
    write_png(tmp_path / "img" / "a.png")
    (tmp_path / "set.csv").write_text("path,letter,box_cx,box_cy,box_w,box_h\nimg/a.png,A,nan,0.5,0.2,0.3\n")
    with pytest.raises(PhotoSetError, match=r"line 2: hand box has a non-finite value"):
        load_photo_set(tmp_path / "set.csv", LETTERS)


def test_csv_line_numbers_count_blank_lines(tmp_path):
    """The line named is the one an editor shows, even after a blank line."""
    write_png(tmp_path / "img" / "a.png")
    (tmp_path / "set.csv").write_text("path,letter\nimg/a.png,A\n\nimg/a.png,Z\n")
    with pytest.raises(PhotoSetError, match=r"line 4: letter 'Z'"):
        load_photo_set(tmp_path / "set.csv", LETTERS)


def test_csv_saved_by_excel_with_a_bom_is_read(tmp_path):
    write_png(tmp_path / "img" / "a.png")
    (tmp_path / "set.csv").write_bytes("path,letter\nimg/a.png,A\n".encode("utf-8-sig"))
    assert [p.letter for p in load_photo_set(tmp_path / "set.csv", LETTERS)] == ["A"]


def test_row_without_a_path_is_one_clear_error(tmp_path):
    (tmp_path / "set.csv").write_text("letter,path\nA\n")
    with pytest.raises(PhotoSetError, match=r"line 2: no image path"):
        load_photo_set(tmp_path / "set.csv", LETTERS)


def test_image_given_as_source_points_to_predict(tmp_path):
    write_png(tmp_path / "hand.png")
    with pytest.raises(PhotoSetError) as caught:
        load_photo_set(tmp_path / "hand.png", LETTERS)
    message = str(caught.value)
    assert str(tmp_path / "hand.png") in message
    assert "folder with one subfolder per letter" in message
    assert "UTF-8 CSV with path,letter" in message
    assert "fingerspell-predict" in message


def test_image_named_csv_is_recognised_as_an_image(tmp_path):
    write_png(tmp_path / "photo.png")
    (tmp_path / "x.csv").write_bytes((tmp_path / "photo.png").read_bytes())
    with pytest.raises(
        PhotoSetError, match=r"x\.csv is an image, not a CSV; SOURCE must be .*fingerspell-predict"
    ):
        load_photo_set(tmp_path / "x.csv", LETTERS)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (bytes(range(128, 256)) * 8, r"x\.csv is not UTF-8 text"),
        (b"path,letter\n\x00\x00,A\n", r"x\.csv: line 2: image path has a NUL byte"),
        (b"path,letter\n" + b"a" * 200_000 + b",A\n", r"x\.csv is not a readable CSV \(field larger"),
    ],
)
def test_binary_csv_names_the_file_and_says_what_source_must_be(tmp_path, content, says):
    (tmp_path / "x.csv").write_bytes(content)
    with pytest.raises(PhotoSetError, match=says) as caught:
        load_photo_set(tmp_path / "x.csv", LETTERS)
    assert "SOURCE must be a folder with one subfolder per letter, or a UTF-8 CSV" in str(caught.value)
    assert "fingerspell-predict" not in str(caught.value), "not an image: no hint to predict"
