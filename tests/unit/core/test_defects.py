"""The defect checks: each flags its defect with a reason, and leaves alone the look-alikes that clean
development rows hold (benchmarks/curation/dev_defects.py found each of these as a false flag once)."""

import pytest

from clearcurate.core.defects import CHECKS, DEFAULT_CHECKS, correctable, describe, find_defects, is_defective, response_defects


def checks(prompt: str, response: str) -> list[str]:
    return [d["check"] for d in find_defects(prompt, response)]


@pytest.mark.parametrize(
    ("prompt", "response", "expected"),
    [
        ("Name a colour.", "", "empty"),
        ("Name a colour.", " ... ", "empty"),
        ("Render a 3D model of a house", "<nooutput> This type of instruction cannot be fulfilled by a GPT model.", "placeholder"),
        ("Design a logo for the given company.\n\nExample Company", "<No output>", "placeholder"),
        ("Extract the year.", "N/A", "placeholder"),
        ("What is love?", "As an AI language model, I do not have feelings.", "refusal"),
        ("Write a poem.", "I'm sorry, but I cannot write poems.", "refusal"),
        ("What happens if you crack your knuckles?", "I have no comment.", "refusal"),
        ("Describe an atom.", "An atom is made up of a nucleus, which contains protons and neutrons, surrounded by electrons "
         "that travel in the", "truncated"),
        ("Give tips.", "There are several things you should keep in mind when you plan a trip abroad with children:", "truncated"),
        ("Write code.", "Here is the function you asked for:\n```python\ndef f(x):\n    return x", "truncated"),
        ("Should you wash chicken?", "I don't wash chicken before cooking it. I don't wash chicken before cooking it. "
         "I don't wash chicken before cooking it.", "repetition"),
        ("What is the capital of France?", "La capital de Francia es París, una ciudad muy bonita y grande.", "language"),
        ("Describe the given image.", "A cat sitting on a mat.", "needs_input"),
        ("Name the boat depicted in the provided photo.\n\nAttached photo", "The boat in the photo is a sailboat.", "needs_input"),
        ("Summarize the article at the following link.", "The article is about cats.", "needs_input"),
        ("Tell a story about the moon.\n\nNoinput", "Once upon a time...", "input_placeholder"),
        ("Give three tips for staying healthy.", "Give three tips for staying healthy.", "echo"),
        ("What is 48 / 2?", "48 / 2 = 26", "arithmetic"),
    ],
)
def test_each_check_flags_its_defect_with_a_reason(prompt, response, expected):
    found = find_defects(prompt, response)
    assert expected in [d["check"] for d in found]
    assert all(d["reason"] for d in found)


@pytest.mark.parametrize(
    ("prompt", "response"),
    [
        ("Which of these are prime: 4, 6, 8?", "None"),  # a real answer, not a placeholder
        ("Name a major American city", "New York City."),
        ("Does organic farming use pesticides?", "Yes, organic farming uses pesticides."),  # a restatement answers
        ("Develop a web-based application that does the following\n\nSorts images according to category",
         "The application stores the images in a database and sorts them by their labels."),
        ("Solve the math word problem.\n\nIf they add these photos to the 400 in the gallery, how many are there?", "400 + 320 = 720"),
        ("Sort the following words alphabetically: List: fair campground what ripley",
         "We now have: campground < fair < ripley < what. I have now sorted all the words. The answer is campground fair ripley what"),
        ("Translate to French: Good morning, my friend, how are you today?", "Bonjour mon ami, comment allez-vous aujourd'hui ?"),
        ("Summarize.\n\nEl gato durmió en la alfombra todo el día y no se movió para nada.", "The cat slept on the mat all day long."),
        ("Write a song with a chorus.", "Sing it loud and clear today. Sing it loud and clear today. Sing it loud and clear today."),
        ("List five fruits.", "1. Apple\n2. Banana\n3. Cherry\n4. Date\n5. Elderberry and"),  # a list item, not prose
        ("What is 17 / 3?", "It takes 17/3 = 5 and 2/3 loads."),
        ("Plan the weeks.", "Week 1 + Week 2 = 35 + 35 = 70 hours"),
        ("Describe the following painting in 2-3 sentences.\n\n“The Starry Night” by Vincent van Gogh", "Swirling stars over a village."),
        ("Categorize the text.", "Category: Health\nTopic 1: a\n\nCategory: Health\nTopic 2: b\n\nCategory: Health\nTopic 3: c"),
        ("Draw a bar chart of 6, 8 and 10 in text.", "Bars of the chart drawn with characters, one per value, from the top\n"
         "6  | ######\n8  | ########\n10 | ##########\n-------------"),
    ],
)
def test_clean_look_alikes_pass(prompt, response):
    assert find_defects(prompt, response) == []


def test_only_the_named_checks_run_and_names_are_the_checks():
    refusal_and_cut = ("Explain.", "As an AI language model, I think that the main reason is that the")
    assert checks(*refusal_and_cut) == ["refusal", "truncated"]
    assert [d["check"] for d in find_defects(*refusal_and_cut, names=("truncated",))] == ["truncated"]
    assert tuple(CHECKS) == DEFAULT_CHECKS and all(c.what for c in CHECKS.values())


def test_candidates_are_checked_alone_and_prompt_faults_cannot_be_corrected():
    assert [d["check"] for d in response_defects("N/A")] == ["placeholder"]
    assert response_defects("Give three tips for staying healthy.") == []  # echo needs the prompt
    assert not correctable([{"check": "needs_input", "reason": "x"}]) and not correctable([{"check": "input_placeholder", "reason": "x"}])
    assert correctable([{"check": "refusal", "reason": "x"}]) and correctable([])
    assert describe([{"check": "empty", "reason": "the response is empty"}]) == "defect empty: the response is empty"


def test_a_record_is_defective_by_its_defects_or_for_old_records_its_arithmetic():
    assert is_defective({"defects": [{"check": "empty", "reason": "x"}]}) and not is_defective({"defects": []})
    assert is_defective({"arithmetic": 0.5}) and not is_defective({"arithmetic": 1.0}) and not is_defective({})
