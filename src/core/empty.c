/* Keeps a module library non-empty while its sources arrive one by one. */
typedef int cv_empty_translation_unit;
