from django import forms

from .importers.service import FORMAT_LABELS


class ImportForm(forms.Form):
    format = forms.ChoiceField(choices=sorted(FORMAT_LABELS.items()))
    file = forms.FileField(help_text="JSONL or JSON in the chosen format.")
    images = forms.FileField(required=False, help_text="Optional zip of image files, matched by file name.")
    criterion = forms.CharField(
        required=False, help_text="For DRESS files: the file's criterion (else taken from its name)."
    )
    source_model = forms.CharField(required=False, help_text="The LVLM whose responses the file holds.")
    images_base = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Or fetch the images by reference: a folder such as s3://bucket/train2017/ or "
        "https://host/images/ (an allowed host) that each image's file name is appended to.",
    )
